//! Story: quire runs behind a TLS-terminating reverse proxy. Its forwarded headers are
//! believed only from the addresses configured in `trusted_proxies`.

use rocket::http::{Header, Status};
use rocket::local::asynchronous::LocalResponse;

use crate::common::*;

/// A failed login arriving from `remote` with the given forwarding headers.
async fn failed_login_via<'c>(
    b: &'c Browser,
    remote: &str,
    headers: &[(&'static str, &'static str)],
) -> LocalResponse<'c> {
    let mut req = b
        .form_request(
            "/login",
            &[
                ("email", "nobody@example.com"),
                ("password", "not the password at all"),
            ],
        )
        .await
        .remote(remote.parse().unwrap());
    for (name, value) in headers {
        req = req.header(Header::new(*name, *value));
    }
    req.dispatch().await
}

#[rocket::async_test]
async fn forwarded_headers_from_anyone_else_are_ignored() {
    let app = TestApp::spawn().await;
    let res = failed_login_via(
        &app,
        "198.51.100.9:5555",
        &[
            ("X-Forwarded-For", "203.0.113.5"),
            ("X-Real-IP", "203.0.113.6"),
        ],
    )
    .await;
    assert_eq!(res.status(), Status::Unauthorized);
    assert_eq!(throttled_clients(&app).await, vec!["198.51.100.9"]);
}

#[rocket::async_test]
async fn rotating_forwarded_addresses_does_not_dodge_client_throttling() {
    let app = TestApp::spawn().await;
    let spoofs = ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"];
    let mut last = Status::Ok;
    for i in 0..100 {
        let res = failed_login_via(
            &app,
            "198.51.100.9:5555",
            &[("X-Forwarded-For", spoofs[i % spoofs.len()])],
        )
        .await;
        last = res.status();
    }
    assert_eq!(
        last,
        Status::TooManyRequests,
        "the 100th failure locks the client"
    );
}

#[rocket::async_test]
async fn a_trusted_proxy_names_the_client() {
    let app =
        TestApp::spawn_with(|f| f.merge(("trusted_proxies", ["127.0.0.1", "10.0.0.0/8"]))).await;
    // The client claimed 1.2.3.4; the outer proxy appended the real peer, the inner
    // proxy (10.1.1.1) appended the outer one. The rightmost untrusted address wins.
    let res = failed_login_via(
        &app,
        TLS_PROXY,
        &[("X-Forwarded-For", "1.2.3.4, 198.51.100.7, 10.1.1.1")],
    )
    .await;
    assert_eq!(res.status(), Status::Unauthorized);
    assert_eq!(throttled_clients(&app).await, vec!["198.51.100.7"]);
}

#[rocket::async_test]
async fn garbage_from_a_trusted_proxy_counts_against_the_proxy() {
    let app = TestApp::spawn_with(|f| f.merge(("trusted_proxies", ["127.0.0.1"]))).await;
    failed_login_via(&app, TLS_PROXY, &[("X-Forwarded-For", "not-an-address")]).await;
    assert_eq!(throttled_clients(&app).await, vec!["127.0.0.1"]);
}

#[rocket::async_test]
async fn behind_a_tls_proxy_cookies_are_secure_and_links_are_https() {
    let app = TestApp::spawn_with(|f| f.merge(("trusted_proxies", ["127.0.0.1"]))).await;
    let email = unique_email("tls");
    // The form as the browser got it over https (its token's cookie is `__Host-`).
    let form = via_tls_proxy(app.client.get("/signup"))
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap();
    let token = csrf_token_in(&form);
    let fields = [
        ("csrf_token", token.as_str()),
        ("email", &email),
        ("name", "Tess"),
        ("password", PASSWORD),
    ];
    let signup = app
        .client
        .post("/signup")
        .header(rocket::http::ContentType::Form)
        .body(encode(&fields));
    let res = via_tls_proxy(signup)
        .header(Header::new("X-Forwarded-For", "198.51.100.7"))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    // Relative, so the browser stays on the https origin it used.
    assert_eq!(location(&res), "/dashboard");
    let session = set_cookie(&res, "__Host-quire_session").expect("a session cookie");
    assert!(session.contains("Secure"), "{session}");
    assert!(res.headers().get_one("Strict-Transport-Security").is_some());

    let feed = via_tls_proxy(app.client.get("/feed.xml"))
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap();
    assert!(feed.contains("href=\"https://"), "{feed}");
}

#[rocket::async_test]
async fn a_claimed_https_from_an_untrusted_peer_changes_nothing() {
    let app = TestApp::spawn().await;
    let res = app
        .form_request(
            "/signup",
            &[
                ("email", &unique_email("plain")),
                ("name", "Pat"),
                ("password", PASSWORD),
            ],
        )
        .await
        .remote("198.51.100.9:5555".parse().unwrap())
        .header(Header::new("X-Forwarded-Proto", "https"))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    let session = set_cookie(&res, "quire_session").expect("a session cookie");
    assert!(!session.contains("Secure"), "{session}");
    assert!(res.headers().get_one("Strict-Transport-Security").is_none());
}

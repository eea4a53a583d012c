//! Story: the blog trusts the organisation's sign-in for second factors. With
//! `auth.oidc.require_amr` an ID token whose `amr` lacks a required method is refused
//! on a page that says why (no account, no session); admins are held to
//! `auth.oidc.admin_require_amr`; `auth.oidc.acr_values` is asked of the provider; the
//! session keeps the methods and /account shows them; `quire doctor` says whether the
//! provider advertises what these settings need.

use std::process::{Output, Stdio};

use rocket::http::Status;

use crate::common::oidc::*;
use crate::common::op::{OpUser, TestOp, CLIENT_ID, CLIENT_SECRET};
use crate::common::process::quire_command;
use crate::common::*;

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// quire asking for ["mfa"] of everyone and ["mfa", "hwk"] of members of blog-admins.
async fn strict_app(op: &TestOp) -> OidcApp {
    OidcApp::spawn(op, &["oidc"], |f| {
        f.merge(("auth.oidc.require_amr", ["mfa"]))
            .merge(("auth.oidc.admin_require_amr", ["mfa", "hwk"]))
            .merge(("auth.oidc.admin_groups", ["blog-admins"]))
    })
    .await
}

/// Logs `user` in through the OP, which names `amr`, in a new browser: where it landed.
async fn login_with(app: &OidcApp, user: OpUser, amr: Option<&[&str]>) -> (Browser, Landing) {
    app.op.set_user(user);
    app.op.behave(|b| b.amr = amr.map(strings));
    let b = app.new_browser().await;
    let landing = oidc_login(&b, None).await;
    (b, landing)
}

/// The methods of the sessions on the browser's /account page.
async fn account_says(b: &Browser) -> String {
    let (status, page) = b.get_text("/account").await;
    assert_eq!(status, Status::Ok, "{page}");
    unescape(&page)
}

#[rocket::async_test]
async fn an_id_token_without_the_required_amr_is_refused_with_the_page_and_no_session() {
    let op = TestOp::start().await;
    let app = strict_app(&op).await;
    for amr in [Some(&["pwd"][..]), None, Some(&["MFA", "otp"][..])] {
        let user = OpUser::new("sub-weak", "weak@example.com", "Weak");
        let (b, landing) = login_with(&app, user, amr).await;
        landing.assert_friendly(
            Status::Forbidden,
            "did not use a second factor, which this blog requires.",
        );
        assert!(
            landing.text().contains("Stronger sign-in required"),
            "{amr:?}"
        );
        assert!(!b.is_logged_in().await, "{amr:?}");
        assert_eq!(b.get("/dashboard").await.status(), Status::SeeOther);
    }
    assert!(
        app.users().await.is_empty(),
        "an account for a refused first login"
    );
    assert!(
        app.sessions().await.is_empty(),
        "a session for a refused login"
    );
}

#[rocket::async_test]
async fn with_the_required_amr_the_author_is_logged_in_and_account_shows_the_methods() {
    let op = TestOp::start().await;
    let app = strict_app(&op).await;
    let user = OpUser::new("sub-ok", "ok@example.com", "Okay");
    let (b, landing) = login_with(&app, user, Some(&["pwd", "otp", "mfa"])).await;
    assert_eq!(landing.status, Status::SeeOther, "{landing:?}");
    assert_eq!(landing.location, "/dashboard");
    assert_eq!(b.get("/dashboard").await.status(), Status::Ok);
    let page = account_says(&b).await;
    assert!(
        page.contains("logged in with OpenID Connect (pwd, otp, mfa)"),
        "{page}"
    );
    assert_eq!(app.sessions().await.len(), 1);

    // Without a requirement nothing is refused, and a login without amr says so plainly.
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    let user = OpUser::new("sub-plain", "plain@example.com", "Plain");
    let (b, landing) = login_with(&app, user, None).await;
    assert_eq!(landing.status, Status::SeeOther, "{landing:?}");
    let page = account_says(&b).await;
    assert!(page.contains("logged in with OpenID Connect"), "{page}");
    assert!(!page.contains("OpenID Connect ("), "{page}");
}

#[rocket::async_test]
async fn admins_are_held_to_the_stricter_list_while_authors_pass_with_the_looser() {
    let op = TestOp::start().await;
    let app = strict_app(&op).await;
    let amr: &[&str] = &["pwd", "otp", "mfa"];

    let author = OpUser::new("sub-author", "author@example.com", "Author");
    let (b, landing) = login_with(&app, author, Some(amr)).await;
    assert_eq!(landing.status, Status::SeeOther, "{landing:?}");
    assert!(b.is_logged_in().await);

    let admin =
        OpUser::new("sub-admin", "admin@example.com", "Admin").with_groups(&["blog-admins"]);
    let (b, landing) = login_with(&app, admin.clone(), Some(amr)).await;
    landing.assert_friendly(
        Status::Forbidden,
        "did not use a hardware security key, which this blog requires of its administrators.",
    );
    assert!(!b.is_logged_in().await);
    let users = app.users().await;
    assert!(
        users.iter().all(|u| u.oidc_subject != "sub-admin"),
        "the refused admin was provisioned: {users:?}"
    );

    let (b, landing) = login_with(&app, admin, Some(&["hwk", "mfa"])).await;
    assert_eq!(landing.status, Status::SeeOther, "{landing:?}");
    let page = account_says(&b).await;
    assert!(page.contains("OpenID Connect (hwk, mfa)"), "{page}");
    let users = app.users().await;
    let admin = users
        .iter()
        .find(|u| u.oidc_subject == "sub-admin")
        .unwrap();
    assert!(admin.is_admin, "{admin:?}");
    assert_eq!(app.sessions().await.len(), 2);
}

#[rocket::async_test]
async fn with_mfa_required_for_all_an_oidc_login_with_its_amr_needs_no_factor_here() {
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| {
        f.merge(("auth.mfa.require", "all"))
            .merge(("auth.oidc.require_amr", ["mfa"]))
    })
    .await;
    let user = OpUser::new("sub-mfa", "mfa@example.com", "Mfa");
    let (b, landing) = login_with(&app, user.clone(), Some(&["mfa"])).await;
    assert_eq!(landing.location, "/dashboard", "{landing:?}");
    let (status, page) = b.get_text("/dashboard").await;
    assert_eq!(status, Status::Ok, "not let in: {page}");
    let (_, landing) = login_with(&app, user, Some(&["pwd"])).await;
    landing.assert_friendly(Status::Forbidden, "did not use a second factor");
}

#[rocket::async_test]
async fn acr_values_and_the_amr_claim_are_asked_of_the_provider() {
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| {
        f.merge(("auth.oidc.acr_values", ["urn:example:loa:2", "gold"]))
            .merge(("auth.oidc.require_amr", ["mfa"]))
    })
    .await;
    authorize(&start(&app, None).await).await;
    let sent = op
        .authorize_requests()
        .pop()
        .expect("an authorization request");
    assert_eq!(
        sent.get("acr_values").map(String::as_str),
        Some("urn:example:loa:2 gold")
    );
    // The claims parameter goes only to a provider that says it takes one.
    assert!(!sent.contains_key("claims"), "{sent:?}");
    op.behave(|b| b.claims_parameter = true);
    let app = OidcApp::spawn(&op, &["oidc"], |f| {
        f.merge(("auth.oidc.require_amr", ["mfa"]))
    })
    .await;
    authorize(&start(&app, None).await).await;
    let sent = op.authorize_requests().pop().unwrap();
    let claims: serde_json::Value =
        serde_json::from_str(sent.get("claims").expect("a claims parameter")).unwrap();
    assert_eq!(claims["id_token"]["amr"]["essential"], true, "{claims}");
    assert!(!sent.contains_key("acr_values"), "{sent:?}");

    // Without the settings, neither is sent.
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    authorize(&start(&app, None).await).await;
    let sent = op.authorize_requests().pop().unwrap();
    assert!(
        !sent.contains_key("acr_values") && !sent.contains_key("claims"),
        "{sent:?}"
    );
}

/// Runs `quire doctor` against `op` with require_amr ["mfa"] and acr_values ["gold"].
async fn doctor(op: &TestOp) -> Output {
    let auth = format!(
        "{{providers=[\"oidc\"],oidc={{issuer=\"{}\",client_id=\"{CLIENT_ID}\",\
         client_secret=\"{CLIENT_SECRET}\",redirect_url=\"{REDIRECT_URL}\",\
         require_amr=[\"mfa\"],acr_values=[\"gold\"]}}}}",
        op.issuer()
    );
    rocket::tokio::task::spawn_blocking(move || {
        let dir = tempfile::Builder::new()
            .prefix("quire-doctor-amr-")
            .tempdir()
            .unwrap();
        let database = database::TestDatabase::sqlite(dir.path());
        quire_command(dir.path(), &database.url)
            .arg("doctor")
            .env("ROCKET_AUTH", auth)
            .stdin(Stdio::null())
            .output()
            .expect("quire runs")
    })
    .await
    .unwrap()
}

fn lines_of(out: &Output, label: &str) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(label))
        .map(str::to_string)
        .collect()
}

#[rocket::async_test]
async fn doctor_says_whether_the_provider_advertises_amr_and_the_acr_values() {
    let op = TestOp::start().await;
    // The test OP lists its claims, without amr, and no acr_values_supported.
    let out = doctor(&op).await;
    let all = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(lines_of(&out, "amr claim").len(), 1, "{all}");
    assert!(
        lines_of(&out, "amr claim")[0].starts_with("WARN  amr claim: missing"),
        "{all}"
    );
    assert!(
        lines_of(&out, "acr values")[0].starts_with("WARN  acr values: not advertised"),
        "{all}"
    );
    // Warnings, not failures: logins may still work.
    assert!(out.status.success(), "{all}");

    op.behave(|b| b.acr_values_supported = Some(strings(&["silver"])));
    let out = doctor(&op).await;
    let all = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        lines_of(&out, "acr values")[0]
            .contains("missing: acr_values_supported does not list gold"),
        "{all}"
    );

    op.behave(|b| {
        b.advertise_amr = true;
        b.acr_values_supported = Some(strings(&["silver", "gold"]));
    });
    let out = doctor(&op).await;
    let all = String::from_utf8_lossy(&out.stdout).to_string();
    let amr = lines_of(&out, "amr claim");
    assert!(
        amr.len() == 1 && amr[0].contains("ok: claims_supported lists amr"),
        "{all}"
    );
    assert!(!amr[0].starts_with("WARN"), "{all}");
    let acr = lines_of(&out, "acr values");
    assert!(
        acr[0].contains("ok: acr_values_supported lists gold"),
        "{all}"
    );
}

#[rocket::async_test]
async fn amr_settings_are_checked_at_launch() {
    let dir = tempfile::Builder::new()
        .prefix("quire-amr-config-")
        .tempdir()
        .unwrap();
    let db = database::TestDatabase::sqlite(dir.path());
    let op = TestOp::start().await;
    let base = || oidc_figment(test_figment(&db), &op, &["oidc"]);
    assert_launch_refused(
        base().merge(("auth.oidc.require_amr", ["two words"])),
        "auth.oidc.require_amr",
    )
    .await;
    assert_launch_refused(
        base()
            .merge(("auth.oidc.require_amr", ["mfa"]))
            .merge(("auth.oidc.admin_require_amr", Vec::<String>::new())),
        "auth.oidc.admin_require_amr",
    )
    .await;
    // A value RFC 8176 does not register is required as written (with a warning).
    assert_launches(base().merge(("auth.oidc.require_amr", ["ngcmfa"]))).await;
}

#[rocket::async_test]
async fn a_session_from_before_the_requirement_stops_counting_once_it_is_set() {
    let op = TestOp::start().await;
    let app = OidcApp::spawn(&op, &["oidc"], |f| f).await;
    let user = OpUser::new("sub-early", "early@example.com", "Early");
    let (b, landing) = login_with(&app, user, Some(&["pwd"])).await;
    assert_eq!(landing.status, Status::SeeOther, "{landing:?}");
    let sealed = b
        .cookie("quire_session")
        .expect("session cookie")
        .value()
        .to_string();
    let cookie = || rocket::http::Cookie::new("quire_session", sealed.clone());
    assert_eq!(
        b.get_with_cookie("/dashboard", cookie()).await.status(),
        Status::Ok
    );

    // The same site and database, restarted with require_amr set.
    let strict = app
        .figment
        .clone()
        .merge(("auth.oidc.require_amr", ["mfa"]));
    let restarted = Browser::launch(strict.clone()).await;
    let res = restarted.get_with_cookie("/dashboard", cookie()).await;
    assert_eq!(
        res.status(),
        Status::SeeOther,
        "a password-only IdP session still counts"
    );
    // One whose provider named mfa keeps counting.
    let user = OpUser::new("sub-strong", "strong@example.com", "Strong");
    let (b, _) = login_with(&app, user, Some(&["pwd", "mfa"])).await;
    let strong = b.cookie("quire_session").expect("session cookie");
    let strong = rocket::http::Cookie::new("quire_session", strong.value().to_string());
    let res = restarted.get_with_cookie("/dashboard", strong).await;
    assert_eq!(res.status(), Status::Ok);
}

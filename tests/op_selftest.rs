//! The test OP itself behaves like a standards-following OpenID Provider, so the OIDC
//! stories can trust it (and its knobs really misbehave).

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

use crate::common::oidc::{http, published_key, query_of, validation, verified_claims};
use crate::common::op::{
    at_hash, s256, Alg, OpUser, TestOp, BACKCHANNEL_LOGOUT_EVENT, CLIENT_ID, CLIENT_SECRET,
};

const REDIRECT: &str = "http://127.0.0.1:1/oidc/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K9o2ZkYs0nlQvAhRcTfOgU6F7s3aSkQ";

/// GET /authorize as quire would; returns the query of the redirect back.
async fn authorize(op: &TestOp, http: &reqwest::Client) -> BTreeMap<String, String> {
    let res = http
        .get(format!("{}/authorize", op.issuer()))
        .query(&[
            ("client_id", CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid email profile"),
            ("code_challenge", &s256(VERIFIER)),
            ("code_challenge_method", "S256"),
            ("state", "st-1"),
            ("nonce", "n-1"),
        ])
        .send()
        .await
        .expect("authorize");
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert!(location.starts_with(REDIRECT), "{location}");
    query_of(&location)
}

enum Auth {
    Basic,
    Post,
    Both,
    WrongSecret,
}

async fn exchange(
    op: &TestOp,
    http: &reqwest::Client,
    code: &str,
    verifier: &str,
    auth: Auth,
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ];
    let mut req = http.post(format!("{}/token", op.issuer()));
    match auth {
        Auth::Basic => req = req.basic_auth(CLIENT_ID, Some(CLIENT_SECRET)),
        Auth::WrongSecret => req = req.basic_auth(CLIENT_ID, Some("nope")),
        Auth::Post => form.extend([("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)]),
        Auth::Both => {
            req = req.basic_auth(CLIENT_ID, Some(CLIENT_SECRET));
            form.extend([("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)]);
        }
    }
    let res = req.form(&form).send().await.expect("token");
    let status = res.status().as_u16();
    (status, res.json().await.expect("token answers JSON"))
}

async fn get_json(http: &reqwest::Client, url: &str) -> Value {
    let res = http.get(url).send().await.expect(url);
    assert_eq!(res.status(), 200, "{url}");
    res.json().await.expect("JSON")
}

/// Verifies an ID token against the OP's JWKS as a relying party would.
async fn verify(op: &TestOp, id_token: &str) -> Value {
    verified_claims(op, id_token)
        .await
        .expect("the ID token verifies")
}

#[rocket::async_test]
async fn discovery_document_is_complete_and_knobs_change_it() {
    let op = TestOp::start().await;
    let http = http();
    let issuer = op.issuer();
    assert_eq!(issuer, format!("http://127.0.0.1:{}", op.port()));
    let doc = get_json(&http, &format!("{issuer}/.well-known/openid-configuration")).await;
    assert_eq!(doc["issuer"], issuer.as_str());
    for (field, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks"),
        ("end_session_endpoint", "/end_session"),
    ] {
        assert_eq!(doc[field], format!("{issuer}{path}"), "{field}");
    }
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post"])
    );
    assert_eq!(doc["backchannel_logout_supported"], true);
    assert_eq!(doc["backchannel_logout_session_supported"], true);

    op.behave(|b| {
        b.userinfo_available = false;
        b.end_session = false;
        b.auth_methods = vec!["client_secret_post".into()];
        b.issuer_in_discovery = Some(format!("{issuer}/"));
    });
    let doc = get_json(&http, &format!("{issuer}/.well-known/openid-configuration")).await;
    assert!(doc.get("userinfo_endpoint").is_none());
    assert!(doc.get("end_session_endpoint").is_none());
    assert_eq!(doc["issuer"], format!("{issuer}/"));
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_post"])
    );
    assert_eq!(op.discovery_fetches(), 2);

    let jwks = get_json(&http, &format!("{issuer}/jwks")).await;
    assert_eq!(jwks["keys"][0]["kid"], "kid-1");
    op.rotate_key();
    let jwks = get_json(&http, &format!("{issuer}/jwks")).await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    assert_eq!(jwks["keys"][0]["kid"], "kid-2");
    assert_eq!(op.jwks_fetches(), 2);
}

#[rocket::async_test]
async fn a_code_flow_by_hand_yields_a_verifiable_id_token_and_userinfo() {
    let op = TestOp::start().await;
    let http = http();
    op.set_user(OpUser::new("sub-42", "ada@example.com", "Ada").with_groups(&["staff"]));
    let back = authorize(&op, &http).await;
    assert_eq!(back["state"], "st-1");
    assert_eq!(op.authorize_requests()[0]["nonce"], "n-1");

    let (status, tokens) = exchange(&op, &http, &back["code"], VERIFIER, Auth::Basic).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    let access_token = tokens["access_token"].as_str().unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(id_token)
            .unwrap()
            .kid
            .as_deref(),
        Some("kid-1")
    );
    let claims = verify(&op, id_token).await;
    assert_eq!(claims["sub"], "sub-42");
    assert_eq!(claims["azp"], CLIENT_ID);
    assert_eq!(claims["nonce"], "n-1");
    assert_eq!(claims["sid"].as_str(), op.last_sid().as_deref());
    assert_eq!(claims["at_hash"], at_hash(access_token));
    assert!(claims.get("email").is_none(), "thin ID token: {claims}");

    let request = &op.token_requests()[0];
    assert!(request.basic_auth && !request.body_client_id && !request.body_client_secret);
    assert_eq!(request.code_verifier.as_deref(), Some(VERIFIER));

    let info: Value = http
        .get(format!("{}/userinfo", op.issuer()))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["sub"], "sub-42");
    assert_eq!(info["email"], "ada@example.com");
    assert_eq!(info["email_verified"], true);
    assert_eq!(info["groups"], serde_json::json!(["staff"]));
    let unknown = http
        .get(format!("{}/userinfo", op.issuer()))
        .bearer_auth("forged")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 401);

    // Fat ID token after a key rotation: verifies against the new JWKS.
    op.behave(|b| b.thin_id_token = false);
    op.rotate_key();
    let back = authorize(&op, &http).await;
    let (_, tokens) = exchange(&op, &http, &back["code"], VERIFIER, Auth::Basic).await;
    let claims = verify(&op, tokens["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["email"], "ada@example.com");
    assert_eq!(claims["name"], "Ada");
}

#[rocket::async_test]
async fn client_authentication_is_basic_or_post_never_both() {
    let op = TestOp::start().await;
    let http = http();

    let code = authorize(&op, &http).await["code"].clone();
    let (status, body) = exchange(&op, &http, &code, VERIFIER, Auth::Post).await;
    assert_eq!(status, 200, "{body}");
    let request = &op.token_requests()[0];
    assert!(!request.basic_auth && request.body_client_id && request.body_client_secret);

    let code = authorize(&op, &http).await["code"].clone();
    let (status, body) = exchange(&op, &http, &code, VERIFIER, Auth::Both).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    let code = authorize(&op, &http).await["code"].clone();
    let (status, body) = exchange(&op, &http, &code, VERIFIER, Auth::WrongSecret).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );

    op.behave(|b| b.auth_methods = vec!["client_secret_post".into()]);
    let code = authorize(&op, &http).await["code"].clone();
    let (status, _) = exchange(&op, &http, &code, VERIFIER, Auth::Basic).await;
    assert_eq!(status, 401, "Basic refused when not advertised");
}

#[rocket::async_test]
async fn codes_are_single_use_and_bound_to_the_pkce_challenge() {
    let op = TestOp::start().await;
    let http = http();
    let code = authorize(&op, &http).await["code"].clone();
    let (status, _) = exchange(&op, &http, &code, VERIFIER, Auth::Basic).await;
    assert_eq!(status, 200);
    let (status, body) = exchange(&op, &http, &code, VERIFIER, Auth::Basic).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    let code = authorize(&op, &http).await["code"].clone();
    let other = "x".repeat(43);
    let (status, body) = exchange(&op, &http, &code, &other, Auth::Basic).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    op.behave(|b| b.authorize_error = Some("access_denied".into()));
    let back = authorize(&op, &http).await;
    assert_eq!(back["error"], "access_denied");
    assert_eq!(back["state"], "st-1");
    assert!(!back.contains_key("code"));
}

#[rocket::async_test]
async fn misbehaving_tokens_and_logout_tokens() {
    let op = TestOp::start().await;
    let http = http();
    let parts = |t: &str| -> (Value, Value, String) {
        let mut it = t.split('.');
        let mut json = || {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap()).unwrap()
        };
        let (h, c) = (json(), json());
        (h, c, it.next().unwrap().to_string())
    };

    op.behave(|b| {
        b.alg = Alg::None;
        b.iat_offset = None;
        b.azp = Some(None);
        b.nonce = Some("other".into());
    });
    let code = authorize(&op, &http).await["code"].clone();
    let (_, tokens) = exchange(&op, &http, &code, VERIFIER, Auth::Basic).await;
    let (header, claims, signature) = parts(tokens["id_token"].as_str().unwrap());
    assert_eq!(header["alg"], "none");
    assert_eq!(signature, "");
    assert!(claims.get("iat").is_none() && claims.get("azp").is_none());
    assert_eq!(claims["nonce"], "other");

    op.behave(|b| {
        *b = Default::default();
        b.sign_with_stranger_key = true;
    });
    let code = authorize(&op, &http).await["code"].clone();
    let (_, tokens) = exchange(&op, &http, &code, VERIFIER, Auth::Basic).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    let key = published_key(&op, None).await;
    let mut audience_only = Validation::new(Algorithm::RS256);
    audience_only.set_audience(&[CLIENT_ID]);
    assert!(jsonwebtoken::decode::<Value>(id_token, &key, &audience_only).is_err());

    op.behave(|b| *b = Default::default());
    let token = op.logout_token(Some("sub-1"), Some("sid-1"), |c| c["extra"] = "x".into());
    let (header, _, _) = parts(&token);
    assert_eq!(header["typ"], "logout+jwt");
    let claims = jsonwebtoken::decode::<Value>(&token, &key, &validation(&op))
        .expect("logout token verifies")
        .claims;
    assert_eq!(claims["sub"], "sub-1");
    assert_eq!(claims["sid"], "sid-1");
    assert_eq!(claims["extra"], "x");
    assert!(claims["events"][BACKCHANNEL_LOGOUT_EVENT].is_object());
    assert!(claims.get("nonce").is_none() && claims["jti"].is_string());
}

#[rocket::async_test]
async fn stop_refuses_connections_and_the_port_can_be_reused() {
    let op = TestOp::start().await;
    let http = http();
    let port = op.port();
    let discovery = format!("{}/.well-known/openid-configuration", op.issuer());
    get_json(&http, &discovery).await; // leaves a pooled keep-alive connection
    let started = std::time::Instant::now();
    op.stop().await;
    // No grace: a stop is at once (the bound is loose for a loaded machine).
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_secs(5),
        "stop took {took:?}"
    );
    assert!(
        http.get(&discovery).send().await.is_err(),
        "the pooled connection still answers"
    );
    assert!(
        reqwest::get(&discovery).await.is_err(),
        "a new connection is still accepted"
    );

    let op = TestOp::start_on(port).await;
    assert_eq!(op.port(), port);
    assert_eq!(
        get_json(&http, &discovery).await["issuer"],
        op.issuer().as_str()
    );
    op.stop().await;
}

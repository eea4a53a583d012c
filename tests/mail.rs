//! Mail and password reset, against a real SMTP server (aiosmtpd) the stories start:
//! the reset round trip, the same answer for unknown addresses, links that are used,
//! expired or superseded, mail kept through an SMTP outage and a restart, several
//! instances sending each message once, STARTTLS certificate checks, and the operator's
//! `quire user reset-link` and `quire doctor`.

use std::time::{Duration, Instant};

use rocket::http::Status;

use crate::common::process::quire_command;
use crate::common::smtp::{free_port, mail_settings, SmtpServer, TestCerts, SITE_URL};
use crate::common::*;

const NEW_PASSWORD: &str = "quiet lantern orchard biscuit";

async fn app_with(server: &SmtpServer) -> TestApp {
    TestApp::spawn_with(|base| server.configure(base)).await
}

async fn ask_reset(b: &Browser, email: &str) -> (Status, String) {
    text_of(b.post_form("/password/forgot", &[("email", email)]).await).await
}

#[rocket::async_test]
async fn a_forgotten_password_is_reset_through_the_mailed_link() {
    let smtp = SmtpServer::start();
    let app = app_with(&smtp).await;
    let (old_session, email) = app.author("Ruth").await;

    let (status, login) = app.get_text("/login").await;
    assert_eq!(status, Status::Ok);
    assert!(login.contains(r#"href="/password/forgot""#), "{login}");

    let b = app.new_browser().await;
    let (status, page) = b.get_text("/password/forgot").await;
    assert_eq!(status, Status::Ok);
    assert!(page.contains(r#"name="email""#), "{page}");
    let (status, page) = ask_reset(&b, &email).await;
    assert_eq!(status, Status::Ok);
    assert!(visible_text(&page).contains("we sent a link"), "{page}");

    let mail = smtp.wait_for(1, 20).await.remove(0);
    assert_eq!(mail.rcpt_to, vec![email.clone()]);
    assert!(mail.from.contains("blog@blog.test"), "{mail:?}");
    assert!(mail.subject.contains("Test Blog"), "{mail:?}");
    let link = mail.reset_link();
    assert!(
        link.starts_with(&format!("{SITE_URL}/password/reset/")),
        "{link}"
    );
    let html = unescape(&mail.html);
    assert!(
        html.contains(&format!(r#"href="{link}""#)),
        "the HTML part links too: {html}"
    );
    assert!(
        !mail.html.contains("<img"),
        "no tracking pixel: {}",
        mail.html
    );
    let token = link.rsplit('/').next().unwrap().to_string();
    assert!(token.len() >= 43, "a 256-bit token: {token}");
    let stored = reset_token_hashes(&app).await;
    assert_eq!(
        stored,
        vec![token_hash(&token)],
        "only the token's hash is stored"
    );
    // Delivered mail leaves the outbox (the row goes just after the server accepts it).
    assert_outbox_empties(&app).await;

    let path = mail.reset_path();
    let res = b.get(&path).await;
    assert_eq!(res.headers().get_one("Cache-Control"), Some("no-store"));
    let (status, form) = text_of(res).await;
    assert_eq!(status, Status::Ok);
    assert!(
        form.contains(r#"name="password" type="password""#),
        "{form}"
    );

    // The signup policy applies: a short password is refused on the same page.
    let (status, page) = text_of(b.post_form(&path, &[("password", "short")]).await).await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert!(page.contains(r#"name="password""#), "{page}");

    let res = b.post_form(&path, &[("password", NEW_PASSWORD)]).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/dashboard");
    drop(res);
    assert!(b.is_logged_in().await, "the reset logs the person in");
    assert!(
        !old_session.is_logged_in().await,
        "every older session ended"
    );
    assert_eq!(session_count(&app).await, 1);

    let other = app.new_browser().await;
    assert_eq!(
        other.login(&email, PASSWORD).await.status(),
        Status::Unauthorized
    );
    assert_eq!(
        other.login(&email, NEW_PASSWORD).await.status(),
        Status::SeeOther
    );

    let mails = smtp.wait_for(2, 20).await;
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[1].rcpt_to, vec![email]);
    assert!(mails[1].text.contains("was just changed"), "{:?}", mails[1]);
}

#[rocket::async_test]
async fn an_unknown_address_gets_the_same_answer_and_no_mail() {
    let smtp = SmtpServer::start();
    let app = app_with(&smtp).await;
    let (_, known) = app.author("Sam").await;
    let unknown = unique_email("nobody");

    let b = app.new_browser().await;
    let started = Instant::now();
    let (s1, unknown_page) = ask_reset(&b, &unknown).await;
    let unknown_took = started.elapsed();
    let started = Instant::now();
    let (s2, known_page) = ask_reset(&b, &known).await;
    let known_took = started.elapsed();
    assert_eq!(s1, s2);
    let strip = |page: &str, email: &str| {
        let page = page.replace(email, "EMAIL");
        // The CSRF token may differ between two pages.
        let re = regex::Regex::new(r#"value="[^"]*""#).unwrap();
        re.replace_all(&page, "").to_string()
    };
    assert_eq!(strip(&unknown_page, &unknown), strip(&known_page, &known));
    // Both answers are padded to the same floor.
    assert!(
        unknown_took >= Duration::from_millis(250),
        "{unknown_took:?}"
    );
    assert!(known_took >= Duration::from_millis(250), "{known_took:?}");

    // The known address's mail arrives; none went to the unknown one.
    let mails = smtp.wait_for(1, 20).await;
    rocket::tokio::time::sleep(Duration::from_millis(1500)).await;
    let mails_now = smtp.mails();
    assert_eq!(mails_now.len(), 1, "{mails_now:?}");
    assert_eq!(mails[0].rcpt_to, vec![known]);
}

#[rocket::async_test]
async fn a_reset_link_works_once() {
    let smtp = SmtpServer::start();
    let app = app_with(&smtp).await;
    let (_, email) = app.author("Uma").await;
    let b = app.new_browser().await;
    ask_reset(&b, &email).await;
    let path = smtp.wait_for(1, 20).await[0].reset_path();
    let res = b.post_form(&path, &[("password", NEW_PASSWORD)]).await;
    assert_eq!(res.status(), Status::SeeOther);
    drop(res);

    let thief = app.new_browser().await;
    let (status, page) = thief.get_text(&path).await;
    assert_eq!(status, Status::NotFound);
    assert!(visible_text(&page).contains("already used"), "{page}");
    let (status, _) = text_of(
        thief
            .post_form(&path, &[("password", OTHER_PASSWORD)])
            .await,
    )
    .await;
    assert_eq!(status, Status::NotFound);
    assert!(!thief.is_logged_in().await);
    assert_eq!(
        thief.login(&email, NEW_PASSWORD).await.status(),
        Status::SeeOther
    );
}

#[rocket::async_test]
async fn an_expired_reset_link_is_refused() {
    let smtp = SmtpServer::start();
    let app = app_with(&smtp).await;
    let (_, email) = app.author("Vic").await;
    let b = app.new_browser().await;
    ask_reset(&b, &email).await;
    let path = smtp.wait_for(1, 20).await[0].reset_path();
    expire_password_resets(&app).await;

    let (status, page) = b.get_text(&path).await;
    assert_eq!(status, Status::NotFound);
    assert!(visible_text(&page).contains("expired"), "{page}");
    let (status, _) = text_of(b.post_form(&path, &[("password", NEW_PASSWORD)]).await).await;
    assert_eq!(status, Status::NotFound);
    assert_eq!(b.login(&email, PASSWORD).await.status(), Status::SeeOther);
}

#[rocket::async_test]
async fn a_newer_request_voids_the_older_link() {
    let smtp = SmtpServer::start();
    let app = app_with(&smtp).await;
    let (_, email) = app.author("Wes").await;
    let b = app.new_browser().await;
    ask_reset(&b, &email).await;
    let first = smtp.wait_for(1, 20).await[0].reset_path();
    ask_reset(&b, &email).await;
    let second = smtp.wait_for(2, 20).await[1].reset_path();
    assert_ne!(first, second);

    let (status, _) = text_of(b.post_form(&first, &[("password", NEW_PASSWORD)]).await).await;
    assert_eq!(status, Status::NotFound);
    let res = b.post_form(&second, &[("password", NEW_PASSWORD)]).await;
    assert_eq!(res.status(), Status::SeeOther);
}

#[rocket::async_test]
async fn an_account_from_the_identity_provider_is_told_to_use_it() {
    let smtp = SmtpServer::start();
    let app = app_with(&smtp).await;
    let email = unique_email("sso");
    let pool = app.db().await;
    quire::db::users::upsert_oidc(
        &pool,
        quire::db::users::OidcIdentity {
            issuer: "https://idp.example.com",
            subject: "sub-1",
            email: &email,
            name: "Sso Person",
            is_admin: false,
        },
    )
    .await
    .unwrap();
    let b = app.new_browser().await;
    let (status, page) = ask_reset(&b, &email).await;
    assert_eq!(status, Status::Ok);
    assert!(visible_text(&page).contains("we sent a link"), "{page}");
    let mail = smtp.wait_for(1, 20).await.remove(0);
    assert_eq!(mail.rcpt_to, vec![email]);
    assert!(mail.text.contains("no password on Test Blog"), "{mail:?}");
    assert!(!mail.text.contains("/password/reset/"), "{mail:?}");
    assert!(reset_token_hashes(&app).await.is_empty());
}

#[rocket::async_test]
async fn without_mail_the_forgot_page_sends_nothing_and_says_whom_to_ask() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Xia").await;
    let b = app.new_browser().await;
    let (status, page) = b.get_text("/password/forgot").await;
    assert_eq!(status, Status::Ok);
    assert!(
        visible_text(&page).contains("Contact the site's administrator"),
        "{page}"
    );
    let (status, page) = ask_reset(&b, &email).await;
    assert_eq!(status, Status::ServiceUnavailable);
    let text = visible_text(&page);
    assert!(text.contains("Contact the site's administrator"), "{page}");
    assert!(!text.contains("we sent"), "{page}");
    assert!(reset_token_hashes(&app).await.is_empty());
    assert!(outbox(&app).await.is_empty());
}

#[rocket::async_test]
async fn mail_queued_during_an_outage_is_delivered_once_the_server_is_back() {
    let port = free_port();
    let smtp_url = format!("smtp://127.0.0.1:{port}");
    let app = TestApp::spawn_with(|f| mail_settings(f, &smtp_url)).await;
    let (_, email) = app.author("Yan").await;
    let b = app.new_browser().await;
    let (status, _) = ask_reset(&b, &email).await;
    assert_eq!(
        status,
        Status::Ok,
        "the request does not wait for the server"
    );

    // Attempts fail while nothing listens; the message stays queued, its body sealed
    // and the failure noted without it.
    let until = Instant::now() + Duration::from_secs(20);
    let queued = loop {
        let q = outbox(&app).await;
        if q.len() == 1 && !q[0].3.is_empty() {
            break q;
        }
        assert!(Instant::now() < until, "no failed attempt recorded: {q:?}");
        rocket::tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (recipient, kind, body, error) = &queued[0];
    assert_eq!(recipient, &email);
    assert_eq!(kind, "password_reset");
    assert!(
        !body.contains("/password/reset/"),
        "the queued body is sealed: {body}"
    );
    assert!(!error.contains("/password/reset/"), "{error}");

    // The instance goes away (a restart, a crash); the mail waits in the database.
    drop(b);
    let TestApp {
        browser,
        figment,
        database,
        dir,
    } = app;
    drop(browser);
    let smtp = SmtpServer::start_on(port, None);
    let restarted = Browser::launch(figment).await;
    let mails = smtp.wait_for(1, 30).await;
    assert_eq!(mails[0].rcpt_to, vec![email]);
    rocket::tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(smtp.mails().len(), 1, "delivered once");
    let pool = crate::common::database::connect(&database.url).await;
    assert!(outbox(&pool).await.is_empty());
    drop((restarted, dir));
}

#[rocket::async_test]
async fn several_instances_send_each_message_once() {
    let smtp = SmtpServer::start();
    let app = app_with(&smtp).await;
    let others = [app.new_browser().await, app.new_browser().await];
    let config = quire::config::Config::from_figment(&app.figment).unwrap();
    let keys = quire::keys::Keys::from_figment(&app.figment);
    let mailer = quire::mail::Mailer::new(&config, &keys, None)
        .unwrap()
        .unwrap();
    let pool = app.db().await;
    const N: usize = 40;
    let mut tx = pool.begin().await.unwrap();
    for n in 0..N {
        let mail = mailer
            .compose(
                "test",
                &format!("r{n}@example.com"),
                format!("message {n}"),
                (),
            )
            .unwrap();
        mailer.queue(&mut tx, &mail).await.unwrap();
    }
    tx.commit().await.unwrap();

    let mails = smtp.wait_for(N, 60).await;
    rocket::tokio::time::sleep(Duration::from_millis(2500)).await;
    let mails_now = smtp.mails();
    assert_eq!(mails_now.len(), N, "each message once");
    let mut subjects: Vec<String> = mails.iter().map(|m| m.subject.clone()).collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), N);
    assert_outbox_empties(&app).await;
    drop(others);
}

#[rocket::async_test]
async fn starttls_to_a_self_signed_server_needs_its_ca_to_be_trusted() {
    let certs = TestCerts::make();
    let port = free_port();
    let smtp = SmtpServer::start_on(port, Some(&certs));
    let url = format!("smtp://localhost:{port}?tls=starttls");

    // Not trusted: refused, nothing delivered, the reason noted.
    let app = TestApp::spawn_with(|f| mail_settings(f, &url)).await;
    let (_, email) = app.author("Zed").await;
    ask_reset(&app.new_browser().await, &email).await;
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let q = outbox(&app).await;
        if q.len() == 1 && !q[0].3.is_empty() {
            assert!(q[0].3.to_lowercase().contains("certificate"), "{q:?}");
            break;
        }
        assert!(Instant::now() < until, "no refused attempt: {q:?}");
        rocket::tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(smtp.mails().is_empty());

    // Trusted through mail.ca_file: delivered, over TLS.
    let ca = certs.ca().display().to_string();
    let app = TestApp::spawn_with(|f| mail_settings(f, &url).merge(("mail.ca_file", ca))).await;
    let (_, email) = app.author("Zoe").await;
    ask_reset(&app.new_browser().await, &email).await;
    let mail = smtp.wait_for(1, 20).await.remove(0);
    assert_eq!(mail.rcpt_to, vec![email]);
    assert!(mail.tls, "delivered over STARTTLS");
}

#[rocket::async_test]
async fn mail_settings_are_checked_at_launch() {
    let app = TestApp::spawn().await;
    let base = || mail_settings(app.figment.clone(), "smtp://127.0.0.1:2525");
    assert_launches(base()).await;
    assert_launch_refused(
        mail_settings(app.figment.clone(), "smtp://mail.example.com:25"),
        "mail.smtp_url",
    )
    .await;
    assert_launch_refused(base().merge(("mail.from", "not an address")), "mail.from").await;
    assert_launch_refused(base().merge(("mail.smtp_url", "http://x")), "mail.smtp_url").await;
    assert_launch_refused(base().merge(("site.url", "")), "site.url").await;
    let with_password = base()
        .merge(("mail.smtp_url", "smtps://mail.example.com"))
        .merge(("mail.user", "blog"))
        .merge(("mail.password", "hunter2-secret"));
    let config = quire::config::Config::from_figment(&with_password).unwrap();
    let shown = format!("{config:?}");
    assert!(
        shown.contains("blog") && !shown.contains("hunter2-secret"),
        "{shown}"
    );
}

#[rocket::async_test]
async fn the_operator_prints_a_one_time_reset_link() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Ola").await;
    let run = |email: &str| {
        quire_command(app.dir.path(), &app.database.url)
            .env("ROCKET_SITE", format!("{{url=\"{SITE_URL}\"}}"))
            .env("ROCKET_SECRET_KEY", SECRET_KEY)
            .args(["user", "reset-link", "--email", email])
            .output()
            .expect("quire runs")
    };
    let out = run(&email);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let link = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let path = link
        .strip_prefix(SITE_URL)
        .unwrap_or_else(|| panic!("{link}"))
        .to_string();
    let out = run(&unique_email("nobody"));
    assert!(!out.status.success());

    let b = app.new_browser().await;
    assert_eq!(b.get(&path).await.status(), Status::Ok);
    let res = b.post_form(&path, &[("password", NEW_PASSWORD)]).await;
    assert_eq!(res.status(), Status::SeeOther);
    drop(res);
    assert_eq!(b.get(&path).await.status(), Status::NotFound, "used once");
}

#[rocket::async_test]
async fn doctor_checks_the_mail_server_and_sends_a_test_message() {
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let db = crate::common::database::TestDatabase::create(dir.path());
    let doctor = |port: u16, extra: &[&str]| {
        let mut cmd = quire_command(dir.path(), &db.url);
        cmd.env("ROCKET_SITE", format!("{{url=\"{SITE_URL}\"}}"))
            .env(
                "ROCKET_MAIL",
                format!("{{smtp_url=\"smtp://127.0.0.1:{port}\",from=\"blog@blog.test\"}}"),
            )
            .arg("doctor")
            .args(extra);
        cmd.output().expect("quire runs")
    };
    let out = doctor(smtp.port, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("connected to 127.0.0.1"), "{stdout}");

    let out = doctor(smtp.port, &["--send-test-to", "ops@example.com"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let mail = smtp.wait_for(1, 10).await.remove(0);
    assert_eq!(mail.rcpt_to, vec!["ops@example.com".to_string()]);

    let out = doctor(free_port(), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!out.status.success());
    assert!(stdout.contains("FAIL  mail"), "{stdout}");
}

#[rocket::async_test]
async fn reset_requests_are_limited_per_address_and_per_client() {
    let smtp = SmtpServer::start();
    let app = app_with(&smtp).await;
    let (_, email) = app.author("Lin").await;
    let b = app.new_browser().await;

    // A typo is shown on the form, with what was typed kept.
    let (status, page) = ask_reset(&b, "not-an-address").await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert!(page.contains(r#"value="not-an-address""#), "{page}");

    // Three mails an hour to one address; the fourth request gets the same answer.
    for _ in 0..4 {
        let (status, page) = ask_reset(&b, &email).await;
        assert_eq!(status, Status::Ok);
        assert!(visible_text(&page).contains("we sent a link"), "{page}");
    }
    smtp.wait_for(3, 20).await;
    rocket::tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(smtp.mails().len(), 3);

    // One client may ask 20 times an hour, whatever the addresses.
    for _ in 0..16 {
        let (status, _) = ask_reset(&b, &unique_email("someone")).await;
        assert_eq!(status, Status::Ok);
    }
    let (status, page) = ask_reset(&b, &unique_email("someone")).await;
    assert_eq!(status, Status::TooManyRequests);
    assert!(
        visible_text(&page).contains("Too many reset requests"),
        "{page}"
    );
}

#[rocket::async_test]
async fn two_requests_at_once_leave_one_working_link() {
    let smtp = SmtpServer::start();
    let app = app_with(&smtp).await;
    let (_, email) = app.author("Kai").await;
    let (a, b) = (app.new_browser().await, app.new_browser().await);
    let (ra, rb) = rocket::tokio::join!(ask_reset(&a, &email), ask_reset(&b, &email));
    assert_eq!((ra.0, rb.0), (Status::Ok, Status::Ok));
    let mails = smtp.wait_for(2, 20).await;
    assert_eq!(reset_token_hashes(&app).await.len(), 1);
    let working: Vec<Status> = {
        let mut v = Vec::new();
        for m in &mails {
            v.push(a.get(&m.reset_path()).await.status());
        }
        v
    };
    assert_eq!(
        working.iter().filter(|s| **s == Status::Ok).count(),
        1,
        "{working:?}"
    );
}

/// Waits, for a few seconds at most, until every queued message is gone: the sender
/// deletes a row only after the server has accepted its message, so the mail can be read
/// a moment before the row disappears.
async fn assert_outbox_empties(app: &TestApp) {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let q = outbox(app).await;
        if q.is_empty() {
            return;
        }
        assert!(Instant::now() < until, "still queued: {q:?}");
        rocket::tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

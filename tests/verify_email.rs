//! Email verification (`auth.verify_email`), against a real SMTP server (aiosmtpd): signup
//! answers "check your inbox" and the mailed link confirms and logs in; an address that
//! has an account gets the same answer and its owner a mail with a reset link; links
//! that are used, expired or superseded; an unconfirmed account writes drafts but
//! publishes only once confirmed; an email change confirmed at the new address and told
//! to the old; accounts from before the setting, from `quire user add` and from the
//! OpenID provider count as confirmed; and the setting refused without `[mail]`.

use std::time::{Duration, Instant};

use rocket::figment::Figment;
use rocket::http::Status;

use crate::common::oidc::{logged_in, OidcApp};
use crate::common::op::TestOp;
use crate::common::process::quire_command;
use crate::common::smtp::{ReceivedMail, SmtpServer, SITE_URL};
use crate::common::*;

fn verifying(figment: Figment) -> Figment {
    figment.merge(("auth.verify_email", true))
}

/// A site that verifies addresses, mailing through `smtp`.
async fn app_with(smtp: &SmtpServer) -> TestApp {
    TestApp::spawn_with(|base| verifying(smtp.configure(base))).await
}

/// A site with mail that does not verify addresses yet; `turn_on` makes the browsers
/// opened afterwards verify them, as restarting with the setting on would.
async fn app_before(smtp: &SmtpServer) -> TestApp {
    TestApp::spawn_with(|base| smtp.configure(base)).await
}

fn turn_on(app: &mut TestApp) {
    app.figment = verifying(app.figment.clone());
}

async fn sign_up(b: &Browser, email: &str, name: &str) -> (Status, String) {
    text_of(b.signup(email, name, PASSWORD).await).await
}

/// The `n`th mail (from 0) to `to`, waiting for it.
async fn mail_to(smtp: &SmtpServer, to: &str, n: usize) -> ReceivedMail {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let mut mine: Vec<ReceivedMail> = smtp
            .mails()
            .into_iter()
            .filter(|m| m.rcpt_to == [to])
            .collect();
        if mine.len() > n {
            return mine.swap_remove(n);
        }
        assert!(
            Instant::now() < until,
            "no mail #{n} to {to}: {:?}",
            smtp.mails()
        );
        rocket::tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How many mails went to `to`, after giving a late one time to arrive.
async fn settled_count(smtp: &SmtpServer, to: &str) -> usize {
    rocket::tokio::time::sleep(Duration::from_millis(1500)).await;
    smtp.mails().iter().filter(|m| m.rcpt_to == [to]).count()
}

/// The confirmation link in a mail's text, absolute.
fn confirm_link(mail: &ReceivedMail) -> String {
    let re = regex::Regex::new(r"https?://\S+/verify-email/[A-Za-z0-9_-]+").unwrap();
    re.find(&mail.text)
        .unwrap_or_else(|| panic!("no confirmation link in {:?}", mail.text))
        .as_str()
        .to_string()
}

/// The confirmation link's path, as a browser requests it.
fn confirm_path(mail: &ReceivedMail) -> String {
    let link = confirm_link(mail);
    link.strip_prefix(SITE_URL)
        .unwrap_or_else(|| panic!("{link} is not on {SITE_URL}"))
        .to_string()
}

/// Signs up `name` on a verifying site; returns the email and the path of its link.
async fn signed_up(app: &TestApp, smtp: &SmtpServer, name: &str) -> (String, String) {
    let b = app.new_browser().await;
    let email = unique_email(name);
    let (status, page) = sign_up(&b, &email, name).await;
    assert_eq!(status, Status::Ok, "{page}");
    (email.clone(), confirm_path(&mail_to(smtp, &email, 0).await))
}

/// GETs `path` and follows its redirect; the status of the first answer and the page
/// at the end.
async fn follow(b: &Browser, path: &str) -> (Status, String, String) {
    let res = b.get(path).await;
    let status = res.status();
    let to = location(&res);
    drop(res);
    let (_, page) = b.get_text(&to).await;
    (status, to, page)
}

#[rocket::async_test]
async fn signup_answers_check_your_inbox_and_the_mailed_link_confirms_and_logs_in() {
    let smtp = SmtpServer::start();
    let app = app_with(&smtp).await;
    let b = app.new_browser().await;
    let email = unique_email("Ada");
    let (status, page) = sign_up(&b, &email, "Ada").await;
    assert_eq!(status, Status::Ok);
    let text = visible_text(&page);
    assert!(text.contains("Check your inbox"), "{text}");
    assert!(text.contains(&email), "{text}");
    assert!(!b.is_logged_in().await, "signup does not log in");
    assert!(!email_confirmed(&app, &email).await);

    let mail = mail_to(&smtp, &email, 0).await;
    assert!(mail.subject.contains("Confirm your email"), "{mail:?}");
    let link = confirm_link(&mail);
    assert!(
        link.starts_with(&format!("{SITE_URL}/verify-email/")),
        "{link}"
    );
    assert!(
        unescape(&mail.html).contains(&format!(r#"href="{link}""#)),
        "the HTML part links too: {}",
        mail.html
    );
    let token = link.rsplit('/').next().unwrap();
    assert!(token.len() >= 43, "a 256-bit token: {token}");
    assert_eq!(
        verification_token_hashes(&app).await,
        vec![token_hash(token)],
        "only the token's hash is stored"
    );

    let res = b.get(&confirm_path(&mail)).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/dashboard");
    assert_eq!(res.headers().get_one("Cache-Control"), Some("no-store"));
    drop(res);
    let (status, dashboard) = b.get_text("/dashboard").await;
    assert_eq!(status, Status::Ok, "the link logs the person in");
    let text = visible_text(&dashboard);
    assert!(text.contains(&format!("{email} is confirmed")), "{text}");
    assert!(!text.contains("Confirm your email address"), "{text}");
    assert!(email_confirmed(&app, &email).await);
    assert_eq!(session_count(&app).await, 1);
    assert!(verification_token_hashes(&app).await.is_empty());
}

#[rocket::async_test]
async fn an_address_with_an_account_gets_the_same_answer_and_its_owner_a_mail_with_a_reset_link() {
    let smtp = SmtpServer::start();
    let mut app = app_before(&smtp).await;
    let (_, owner) = app.author("Bea").await;
    turn_on(&mut app);
    let fresh = unique_email("Cy");

    let b = app.new_browser().await;
    let started = Instant::now();
    let (s1, fresh_page) = sign_up(&b, &fresh, "Cy").await;
    let fresh_took = started.elapsed();
    let started = Instant::now();
    let (s2, taken_page) = sign_up(&b, &owner, "Cy").await;
    let taken_took = started.elapsed();
    assert_eq!((s1, s2), (Status::Ok, Status::Ok));
    let strip = |page: &str, email: &str| {
        let page = page.replace(email, "EMAIL");
        let re = regex::Regex::new(r#"value="[^"]*""#).unwrap();
        re.replace_all(&page, "").to_string()
    };
    assert_eq!(strip(&fresh_page, &fresh), strip(&taken_page, &owner));
    for took in [fresh_took, taken_took] {
        assert!(took >= Duration::from_millis(250), "{took:?}");
    }
    assert!(!b.is_logged_in().await);

    // The owner is told, with a reset link that works; the account is untouched.
    let told = mail_to(&smtp, &owner, 0).await;
    assert!(
        told.subject.contains("Someone tried to sign up"),
        "{told:?}"
    );
    assert!(!told.text.contains("/verify-email/"), "{told:?}");
    let (status, form) = b.get_text(&told.reset_path()).await;
    assert_eq!(status, Status::Ok, "{form}");
    assert_eq!(settled_count(&smtp, &owner).await, 1);
    assert_eq!(user_count(&app).await, 2);
    assert_eq!(
        app.new_browser()
            .await
            .login(&owner, PASSWORD)
            .await
            .status(),
        Status::SeeOther
    );
    // The new address got its confirmation link.
    confirm_path(&mail_to(&smtp, &fresh, 0).await);
}

#[rocket::async_test]
async fn the_owner_of_an_address_someone_signed_up_with_takes_the_account_back_by_reset() {
    let smtp = SmtpServer::start();
    let app = app_with(&smtp).await;
    // Someone signs up with another person's address, and never confirms it.
    let (email, _) = signed_up(&app, &smtp, "Lea").await;
    let squatter = app.login_as(&email).await;
    // The owner signs up too: the same answer, and a mail with a reset link.
    let owner = app.new_browser().await;
    let (status, page) = sign_up(&owner, &email, "Lea").await;
    assert_eq!(status, Status::Ok, "{page}");
    let told = mail_to(&smtp, &email, 1).await;
    assert!(
        told.subject.contains("Someone tried to sign up"),
        "{told:?}"
    );
    let res = owner
        .post_form(&told.reset_path(), &[("password", OTHER_PASSWORD)])
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    drop(res);
    assert!(
        !squatter.is_logged_in().await,
        "the squatter's session ended"
    );
    assert!(
        email_confirmed(&app, &email).await,
        "the reset link proved the address"
    );
    let slug = owner.create_post("Mine again", "Words.", true).await;
    let anon = app.new_browser().await;
    assert_eq!(
        anon.get(&format!("/posts/{slug}")).await.status(),
        Status::Ok
    );
}

#[rocket::async_test]
async fn a_confirmation_link_works_once() {
    let smtp = SmtpServer::start();
    let app = app_with(&smtp).await;
    let (_, path) = signed_up(&app, &smtp, "Dee").await;
    let b = app.new_browser().await;
    assert_eq!(b.get(&path).await.status(), Status::SeeOther);

    let thief = app.new_browser().await;
    let (status, page) = thief.get_text(&path).await;
    assert_eq!(status, Status::NotFound);
    assert!(visible_text(&page).contains("already used"), "{page}");
    assert!(!thief.is_logged_in().await);
    assert_eq!(session_count(&app).await, 1);
}

#[rocket::async_test]
async fn an_expired_confirmation_link_is_refused_and_a_new_one_can_be_sent() {
    let smtp = SmtpServer::start();
    let app = app_with(&smtp).await;
    let (email, path) = signed_up(&app, &smtp, "Eli").await;
    expire_email_verifications(&app).await;

    let b = app.new_browser().await;
    let (status, page) = b.get_text(&path).await;
    assert_eq!(status, Status::NotFound);
    assert!(visible_text(&page).contains("expired"), "{page}");
    assert!(page.contains(r#"href="/login?next=/dashboard""#), "{page}");
    assert!(!b.is_logged_in().await);
    assert!(!email_confirmed(&app, &email).await);

    // Logged in with the password, the same page offers the new link.
    assert_eq!(b.login(&email, PASSWORD).await.status(), Status::SeeOther);
    let (status, page) = b.get_text(&path).await;
    assert_eq!(status, Status::NotFound);
    assert!(page.contains(r#"action="/verify-email/resend""#), "{page}");
    let res = b.post_form("/verify-email/resend", &[]).await;
    assert_eq!(res.status(), Status::SeeOther);
    drop(res);
    let fresh = confirm_path(&mail_to(&smtp, &email, 1).await);
    assert_ne!(fresh, path);
    assert_eq!(b.get(&fresh).await.status(), Status::SeeOther);
    assert!(email_confirmed(&app, &email).await);
}

#[rocket::async_test]
async fn an_unconfirmed_account_writes_drafts_and_publishes_once_confirmed() {
    let smtp = SmtpServer::start();
    let app = app_with(&smtp).await;
    let (email, path) = signed_up(&app, &smtp, "Fay").await;
    let b = app.new_browser().await;
    assert_eq!(
        b.login(&email, PASSWORD).await.status(),
        Status::SeeOther,
        "an unconfirmed account logs in with its password"
    );
    let (_, dashboard) = b.get_text("/dashboard").await;
    assert!(
        visible_text(&dashboard).contains("Confirm your email address"),
        "{dashboard}"
    );
    assert!(
        dashboard.contains(r#"action="/verify-email/resend""#),
        "{dashboard}"
    );

    // A draft saves as ever.
    let draft = b.create_post("Notes", "Only for me.", false).await;
    assert!(!post_row(&app, &draft).await.unwrap().published);

    // Publishing is refused on the post form; what was written is kept, as a draft.
    let res = b.submit_post("Hello world", "First words.", true).await;
    assert_eq!(res.status(), Status::SeeOther);
    let to = location(&res);
    drop(res);
    let slug = to
        .strip_prefix("/posts/")
        .and_then(|s| s.strip_suffix("/edit"))
        .unwrap_or_else(|| panic!("sent to {to}, not the post form"))
        .to_string();
    let (status, form) = b.get_text(&to).await;
    assert_eq!(status, Status::Ok);
    assert!(
        visible_text(&form).contains("Saved as a draft, not published"),
        "{form}"
    );
    assert!(form.contains("First words."), "{form}");
    let row = post_row(&app, &slug).await.expect("the draft is kept");
    assert!(!row.published);
    let anon = app.new_browser().await;
    assert_eq!(
        anon.get(&format!("/posts/{slug}")).await.status(),
        Status::NotFound
    );

    // Scheduling is publishing later: refused too.
    let res = b
        .post_form(
            "/posts",
            &[
                ("title", "Later"),
                ("body", "Soon."),
                ("publish", "true"),
                ("publish_at", "2099-01-01T09:00"),
            ],
        )
        .await;
    assert!(location(&res).ends_with("/edit"), "{}", location(&res));
    drop(res);
    // So is publishing a draft from its edit form.
    let res = b
        .edit_post(&slug, "Hello world", "First words.", true)
        .await;
    assert_eq!(location(&res), to);
    drop(res);
    assert!(!post_row(&app, &slug).await.unwrap().published);
    assert_eq!(
        anon.get(&format!("/posts/{slug}")).await.status(),
        Status::NotFound
    );

    // Once confirmed, the same draft publishes.
    assert_eq!(b.get(&path).await.status(), Status::SeeOther);
    let res = b
        .edit_post(&slug, "Hello world", "First words.", true)
        .await;
    assert_eq!(location(&res), format!("/posts/{slug}"));
    drop(res);
    assert_eq!(
        anon.get(&format!("/posts/{slug}")).await.status(),
        Status::Ok
    );
    let (_, dashboard) = b.get_text("/dashboard").await;
    assert!(
        !visible_text(&dashboard).contains("Confirm your email address"),
        "{dashboard}"
    );
}

#[rocket::async_test]
async fn a_new_link_voids_the_older_one_and_asking_is_limited() {
    let smtp = SmtpServer::start();
    let app = app_with(&smtp).await;
    let (email, first) = signed_up(&app, &smtp, "Gus").await;
    let b = app.login_as(&email).await;

    let mut links = vec![first];
    for n in 1..=3 {
        let (status, _, page) = {
            let res = b.post_form("/verify-email/resend", &[]).await;
            let status = res.status();
            let to = location(&res);
            drop(res);
            let (_, page) = b.get_text(&to).await;
            (status, to, page)
        };
        assert_eq!(status, Status::SeeOther);
        assert!(visible_text(&page).contains("We sent a new link"), "{page}");
        links.push(confirm_path(&mail_to(&smtp, &email, n).await));
    }
    // A fourth within the hour is refused, and sends nothing.
    let res = b.post_form("/verify-email/resend", &[]).await;
    let to = location(&res);
    drop(res);
    let (_, page) = b.get_text(&to).await;
    assert!(visible_text(&page).contains("try again later"), "{page}");
    assert_eq!(settled_count(&smtp, &email).await, 4);

    let other = app.new_browser().await;
    for old in &links[..3] {
        assert_eq!(other.get(old).await.status(), Status::NotFound, "{old}");
    }
    assert_eq!(other.get(&links[3]).await.status(), Status::SeeOther);
    assert!(email_confirmed(&app, &email).await);
}

async fn change_email(b: &Browser, email: &str, password: &str) -> (Status, String) {
    text_of(
        b.post_form(
            "/account/email",
            &[("email", email), ("current_password", password)],
        )
        .await,
    )
    .await
}

#[rocket::async_test]
async fn an_email_change_is_confirmed_at_the_new_address_and_told_to_the_old() {
    let smtp = SmtpServer::start();
    let mut app = app_before(&smtp).await;
    let (_, old) = app.author("Hal").await;
    turn_on(&mut app);
    let new = unique_email("Hal New");
    let b = app.login_as(&old).await;
    let (_, account) = b.get_text("/account").await;
    assert!(account.contains(r#"action="/account/email""#), "{account}");

    // A wrong password or a bad address is refused on the page, what was typed kept.
    let (status, page) = change_email(&b, &new, OTHER_PASSWORD).await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert!(
        field_errors(&page, "current_password").contains("not your current password"),
        "{page}"
    );
    assert_eq!(field_value(&page, "email").as_deref(), Some(new.as_str()));
    assert!(!page.contains(OTHER_PASSWORD));
    let (status, page) = change_email(&b, "not-an-address", PASSWORD).await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert!(
        field_errors(&page, "email").contains("like name@example.com"),
        "{page}"
    );

    let res = b
        .post_form(
            "/account/email",
            &[("email", &new), ("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/account");
    drop(res);
    let (_, account) = b.get_text("/account").await;
    let text = visible_text(&account);
    assert!(text.contains(&format!("We sent a link to {new}")), "{text}");
    assert!(text.contains(&format!("{new} replaces it")), "{text}");

    let link = mail_to(&smtp, &new, 0).await;
    assert!(link.subject.contains("Confirm your new email"), "{link:?}");
    let told = mail_to(&smtp, &old, 0).await;
    assert!(told.text.contains(&new), "{told:?}");
    assert!(told.text.contains("changes once"), "{told:?}");

    // Until the new address is confirmed, the old one is the login.
    let other = app.new_browser().await;
    assert_eq!(
        other.login(&new, PASSWORD).await.status(),
        Status::Unauthorized
    );
    assert_eq!(other.login(&old, PASSWORD).await.status(), Status::SeeOther);

    let c = app.new_browser().await;
    let (status, to, page) = follow(&c, &confirm_path(&link)).await;
    assert_eq!((status, to.as_str()), (Status::SeeOther, "/dashboard"));
    assert!(
        visible_text(&page).contains(&format!("Your email address is now {new}")),
        "{page}"
    );
    let after = app.new_browser().await;
    assert_eq!(
        after.login(&old, PASSWORD).await.status(),
        Status::Unauthorized
    );
    assert_eq!(after.login(&new, PASSWORD).await.status(), Status::SeeOther);
    assert!(emails(&app).await.contains(&new));
}

#[rocket::async_test]
async fn a_change_to_an_address_taken_meanwhile_changes_nothing() {
    let smtp = SmtpServer::start();
    let mut app = app_before(&smtp).await;
    let (_, old) = app.author("Max").await;
    turn_on(&mut app);
    let wanted = unique_email("Wanted");
    let b = app.login_as(&old).await;
    let (status, _) = change_email(&b, &wanted, PASSWORD).await;
    assert_eq!(status, Status::SeeOther);
    let link = confirm_path(&mail_to(&smtp, &wanted, 0).await);
    // Before the link is opened, someone else signs up with that address.
    let (status, _) = sign_up(&app.new_browser().await, &wanted, "Other").await;
    assert_eq!(status, Status::Ok);

    let (status, page) = b.get_text(&link).await;
    assert_eq!(status, Status::Conflict);
    assert!(
        visible_text(&page).contains("now belongs to another account"),
        "{page}"
    );
    let other = app.new_browser().await;
    assert_eq!(other.login(&old, PASSWORD).await.status(), Status::SeeOther);
    assert!(emails(&app).await.contains(&old));
}

#[rocket::async_test]
async fn without_verification_an_email_change_applies_at_once_and_the_old_address_is_told() {
    let smtp = SmtpServer::start();
    let app = app_before(&smtp).await;
    let (_, old) = app.author("Ivy").await;
    let (_, someone) = app.author("Jo").await;
    let new = unique_email("Ivy New");
    let b = app.login_as(&old).await;

    let (status, page) = change_email(&b, &someone, PASSWORD).await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert!(
        field_errors(&page, "email").contains("already exists"),
        "{page}"
    );

    let res = b
        .post_form(
            "/account/email",
            &[("email", &new), ("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    drop(res);
    let other = app.new_browser().await;
    assert_eq!(
        other.login(&old, PASSWORD).await.status(),
        Status::Unauthorized
    );
    assert_eq!(other.login(&new, PASSWORD).await.status(), Status::SeeOther);
    let told = mail_to(&smtp, &old, 0).await;
    assert!(
        told.text.contains(&format!("was changed to {new}")),
        "{told:?}"
    );
    assert_eq!(settled_count(&smtp, &new).await, 0, "no link to confirm");
}

#[rocket::async_test]
async fn accounts_from_before_the_setting_the_command_line_and_the_provider_publish() {
    let smtp = SmtpServer::start();
    let mut app = app_before(&smtp).await;
    let (_, before) = app.author("Kit").await;
    turn_on(&mut app);
    let out = quire_command(app.dir.path(), &app.database.url)
        .env("ROCKET_SITE", format!("{{url=\"{SITE_URL}\"}}"))
        .env("ROCKET_SECRET_KEY", SECRET_KEY)
        .env("ROCKET_AUTH", "{verify_email=true}")
        .env(
            "ROCKET_MAIL",
            format!(
                "{{smtp_url=\"smtp://127.0.0.1:{}\",from=\"blog@blog.test\"}}",
                smtp.port
            ),
        )
        .args(["user", "add", "--email", "cli@example.com", "--name", "Cli"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("{PASSWORD}\n").as_bytes())?;
            child.wait_with_output()
        })
        .expect("quire runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let anon = app.new_browser().await;
    for email in [before.as_str(), "cli@example.com"] {
        assert!(email_confirmed(&app, email).await, "{email}");
        let b = app.login_as(email).await;
        let slug = b
            .create_post(&format!("By {email}"), "Out now.", true)
            .await;
        let status = anon.get(&format!("/posts/{slug}")).await.status();
        assert_eq!(status, Status::Ok, "{email}");
    }

    // An account from the OpenID provider is confirmed by it.
    let op = TestOp::start().await;
    let oidc = OidcApp::spawn(&op, &["local", "oidc"], |f| verifying(smtp.configure(f))).await;
    let b = oidc.new_browser().await;
    let page = logged_in(&b, None).await;
    assert!(
        !visible_text(&page).contains("Confirm your email address"),
        "{page}"
    );
    let slug = b.create_post("From the provider", "Out now.", true).await;
    let anon = oidc.new_browser().await;
    assert_eq!(
        anon.get(&format!("/posts/{slug}")).await.status(),
        Status::Ok
    );
}

#[rocket::async_test]
async fn verify_email_without_mail_is_refused_at_launch() {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::common::database::TestDatabase::create(dir.path());
    assert_launch_refused(verifying(test_figment(&db)), "auth.verify_email").await;
    let smtp = SmtpServer::start();
    assert_launches(verifying(smtp.configure(test_figment(&db)))).await;
}

#[rocket::async_test]
async fn a_confirmation_link_for_an_account_with_a_second_factor_still_asks_for_a_code() {
    let smtp = SmtpServer::start();
    let mut app = app_before(&smtp).await;
    let (_, old) = app.author("Ivy").await;
    turn_on(&mut app);
    let b = app.login_as(&old).await;
    let (secret, _) = crate::common::mfa::enrol(&b).await;
    let new = unique_email("Ivy New");
    let res = b
        .post_form(
            "/account/email",
            &[("email", &new), ("current_password", PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    drop(res);
    let link = mail_to(&smtp, &new, 0).await;

    // The mailed link proves the address, not the second factor: no session yet.
    let c = app.new_browser().await;
    let res = c.get(&confirm_path(&link)).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/login/verify");
    drop(res);
    let res = c.get("/dashboard").await;
    assert_eq!(res.status(), Status::SeeOther);
    assert!(location(&res).starts_with("/login"), "{}", location(&res));
    drop(res);

    // The address changed all the same, and a code finishes the login (the enrolment's
    // code was for this same time step, so the clock is moved on first).
    crate::common::mfa::forget_used_steps(&app).await;
    let code = crate::common::mfa::code_now(&secret, 0).await;
    let res = c.post_form("/login/verify", &[("code", &code)]).await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(location(&res), "/dashboard");
    drop(res);
    let (_, account) = c.get_text("/account").await;
    assert!(account.contains(&new), "{account}");
}

//! Story: someone hammers the login and signup forms, in parallel and from several
//! instances at once. They get exactly as many guesses as they would one after another;
//! the owner of an account they are guessing at still logs in from a browser that logged
//! in before; signup is bounded per address; nothing typed is kept in the throttle table;
//! an account whose hash predates a parameter upgrade answers as slowly as an unknown one.

use std::net::TcpListener;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use rocket::futures::future::join_all;
use rocket::http::Status;

use crate::common::database::TestDatabase;
use crate::common::process::quire_command;
use crate::common::*;

/// Hashing slow enough (a few milliseconds) that parallel requests overlap in it.
fn slow_hashing(f: rocket::figment::Figment) -> rocket::figment::Figment {
    f.merge(("auth.argon2.memory_kib", 2048))
}

/// Posts the login form from client address `ip` and returns the status.
async fn login_from(b: &Browser, ip: &str, email: &str, password: &str) -> Status {
    b.form_request("/login", &[("email", email), ("password", password)])
        .await
        .remote(format!("{ip}:5000").parse().unwrap())
        .dispatch()
        .await
        .status()
}

/// Posts the signup form from client address `ip`; the status and the page.
async fn signup_from(b: &Browser, ip: &str, email: &str, name: &str) -> (Status, String) {
    let fields = [("email", email), ("name", name), ("password", PASSWORD)];
    let res = b
        .form_request("/signup", &fields)
        .await
        .remote(format!("{ip}:5000").parse().unwrap())
        .dispatch()
        .await;
    text_of(res).await
}

/// Three browsers, as if behind three instances (each its own Rocket, pool and hasher),
/// with their CSRF cookies already set so that a burst needs no page first.
async fn three_instances(app: &TestApp) -> Vec<Browser> {
    let mut all = Vec::new();
    for _ in 0..3 {
        let b = app.new_browser().await;
        b.csrf_token().await;
        all.push(b);
    }
    all
}

fn count(statuses: &[Status], wanted: Status) -> usize {
    statuses.iter().filter(|s| **s == wanted).count()
}

#[rocket::async_test]
async fn a_burst_of_wrong_passwords_gets_no_more_guesses_than_one_after_another() {
    let app = TestApp::spawn_with(slow_hashing).await;
    let (_, email) = app.author("Ada").await;
    let instances = three_instances(&app).await;
    let burst = (0..150).map(|i| {
        let guess = format!("wrong guess number {i}");
        let b = &instances[i % 3];
        let email = email.clone();
        async move { login_from(b, "10.20.30.40", &email, &guess).await }
    });
    let statuses = join_all(burst).await;
    // One after another: four "incorrect", the fifth locks the account, then refusals.
    assert_eq!(count(&statuses, Status::Unauthorized), 4, "{statuses:?}");
    assert_eq!(count(&statuses, Status::TooManyRequests), 146);

    assert_eq!(
        account_failures(&app, &email).await,
        5,
        "failures counted against the account"
    );
    let stranger = app.new_browser().await;
    assert_eq!(
        login_from(&stranger, "10.9.9.9", &email, PASSWORD).await,
        Status::TooManyRequests,
        "the account is locked for strangers"
    );
}

#[rocket::async_test]
async fn a_burst_across_many_accounts_stops_at_the_client_limit() {
    let app = TestApp::spawn_with(slow_hashing).await;
    let (_, email) = app.author("Bea").await;
    let instances = three_instances(&app).await;
    let burst = (0..150).map(|i| {
        let b = &instances[i % 3];
        async move {
            let victim = format!("victim{i}@example.com");
            login_from(b, "10.1.2.3", &victim, "guess guess guess").await
        }
    });
    let statuses = join_all(burst).await;
    // As sequentially: 99 failures answered as such, the 100th locks the client.
    assert_eq!(count(&statuses, Status::Unauthorized), 99, "{statuses:?}");
    assert_eq!(count(&statuses, Status::TooManyRequests), 51);
    assert_eq!(
        client_failures(&app, "10.1.2.3").await,
        100,
        "failures counted against the client"
    );

    let same_address = app.new_browser().await;
    assert_eq!(
        login_from(&same_address, "10.1.2.3", &email, PASSWORD).await,
        Status::TooManyRequests
    );
}

#[rocket::async_test]
async fn the_right_password_inside_a_burst_neither_logs_in_past_the_limit_nor_clears_it() {
    let app = TestApp::spawn_with(slow_hashing).await;
    let (_, email) = app.author("Cy").await;
    let instances = three_instances(&app).await;
    // Sixty wrong guesses, then the right password, queued behind twenty of them.
    let burst = (0..61).map(|i| {
        let b = &instances[i % 3];
        let password = if i == 60 {
            PASSWORD
        } else {
            "a wrong guess again"
        };
        let email = email.clone();
        async move { login_from(b, "10.20.30.40", &email, password).await }
    });
    let statuses = join_all(burst).await;
    assert_eq!(
        statuses[60],
        Status::TooManyRequests,
        "the right password past the limit: {statuses:?}"
    );
    assert!(!instances[0].is_logged_in().await);
    let stranger = app.new_browser().await;
    assert_eq!(
        login_from(&stranger, "10.9.9.9", &email, PASSWORD).await,
        Status::TooManyRequests,
        "the burst's count was cleared"
    );
}

/// What a success does to a burst it lands in, at the level of the counters (which
/// request of a real burst gets there first is up to the scheduler).
#[rocket::async_test]
async fn a_success_inside_a_burst_releases_only_its_own_reservation() {
    use quire::db::throttle::{self, Reservation};

    let app = TestApp::spawn().await;
    let db = app.db().await;
    let waits = [0, 0, 30];
    let key = "account:test";
    let reserve = || throttle::reserve_consecutive(&db, key, 1_000, 86_400, &waits);
    assert_eq!(reserve().await.unwrap(), Reservation::Granted { count: 1 });
    assert_eq!(reserve().await.unwrap(), Reservation::Granted { count: 2 });
    // The third locks the key at once, before anyone has been verified.
    assert_eq!(reserve().await.unwrap(), Reservation::Granted { count: 3 });
    assert_eq!(
        reserve().await.unwrap(),
        Reservation::Refused { wait_seconds: 30 }
    );
    // The second was the right password; the other two are still being checked.
    throttle::settle_success(&db, key, 1_000).await.unwrap();
    throttle::settle_failure(&db, key).await.unwrap();
    throttle::settle_failure(&db, key).await.unwrap();
    assert_eq!(
        throttle_counter(&db, key).await,
        Some(ThrottleCounter {
            failures: 2,
            locked_until: 1_030
        }),
        "the burst's count stands"
    );
    // Alone in flight, a success ends the run of failures.
    let later = 1_030;
    assert!(matches!(
        throttle::reserve_consecutive(&db, key, later, 86_400, &waits)
            .await
            .unwrap(),
        Reservation::Granted { count: 3 }
    ));
    throttle::settle_success(&db, key, later).await.unwrap();
    assert_eq!(throttle_counter(&db, key).await, None);
}

#[rocket::async_test]
async fn the_owner_logs_in_from_a_known_browser_while_strangers_are_locked_out() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Dee").await;
    let owner = app.login_as(&email).await;
    owner.logout().await;

    let attacker = app.new_browser().await;
    let mut last = Status::Ok;
    for _ in 0..8 {
        last = attacker
            .login(&email, "guessing at her password")
            .await
            .status();
    }
    assert_eq!(last, Status::TooManyRequests);
    let stranger = app.new_browser().await;
    assert_eq!(
        stranger.login(&email, PASSWORD).await.status(),
        Status::TooManyRequests,
        "an unknown browser keeps the account limit"
    );

    let res = owner.login(&email, PASSWORD).await;
    assert_eq!(res.status(), Status::SeeOther, "the owner is locked out");
    assert!(owner.is_logged_in().await);
    // The owner's login did not reset the strangers' lock.
    assert_eq!(
        attacker.login(&email, PASSWORD).await.status(),
        Status::TooManyRequests
    );
}

#[rocket::async_test]
async fn a_known_browser_is_counted_on_its_own_and_only_for_its_account() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Eve").await;
    let (_, other) = app.author("Fay").await;
    let owner = app.login_as(&email).await;
    owner.logout().await;

    // Its own failures lock that browser out...
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(owner.login(&email, "fat fingers again").await.status());
    }
    assert_eq!(statuses[..4], [Status::Unauthorized; 4]);
    assert_eq!(statuses[4], Status::TooManyRequests);
    assert_eq!(
        owner.login(&email, PASSWORD).await.status(),
        Status::TooManyRequests,
        "a known browser is still counted"
    );
    // ...and not the account.
    let elsewhere = app.new_browser().await;
    assert_eq!(
        elsewhere.login(&email, PASSWORD).await.status(),
        Status::SeeOther
    );

    // The cookie vouches for one account only: Fay's lock holds for Eve's browser.
    let attacker = app.new_browser().await;
    for _ in 0..5 {
        attacker.login(&other, "guessing at fay").await;
    }
    assert_eq!(
        elsewhere.login(&other, PASSWORD).await.status(),
        Status::TooManyRequests
    );
}

#[rocket::async_test]
async fn wrong_current_passwords_count_like_failed_logins() {
    let app = TestApp::spawn().await;
    let (b, email) = app.author("Gus").await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let res = b
            .post_form(
                "/account/password",
                &[
                    ("current_password", "is it this one maybe"),
                    ("new_password", OTHER_PASSWORD),
                ],
            )
            .await;
        statuses.push(res.status());
    }
    assert_eq!(statuses[..4], [Status::UnprocessableEntity; 4]);
    assert_eq!(statuses[4], Status::TooManyRequests);
    let res = b
        .post_form(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", OTHER_PASSWORD),
            ],
        )
        .await;
    assert_eq!(res.status(), Status::TooManyRequests);
    let page = res.into_string().await.unwrap();
    assert!(page.contains("Too many failed attempts"), "{page}");
    assert!(page.contains("Your password was not changed."), "{page}");
    // Still the old password; and the same browser's next login is throttled too.
    let other = app.new_browser().await;
    assert_eq!(
        other.login(&email, PASSWORD).await.status(),
        Status::SeeOther
    );
    b.logout().await;
    assert_eq!(
        b.login(&email, PASSWORD).await.status(),
        Status::TooManyRequests
    );
}

#[rocket::async_test]
async fn an_address_creates_a_bounded_number_of_accounts_even_at_once() {
    let app = TestApp::spawn_with(slow_hashing).await;
    let instances = three_instances(&app).await;
    let burst = (0..20).map(|i| {
        let b = &instances[i % 3];
        async move {
            let email = unique_email(&format!("spam{i}"));
            signup_from(b, "10.5.5.5", &email, "Spammer").await
        }
    });
    let results = join_all(burst).await;
    let statuses: Vec<Status> = results.iter().map(|(s, _)| *s).collect();
    assert_eq!(count(&statuses, Status::SeeOther), 10, "{statuses:?}");
    assert_eq!(count(&statuses, Status::TooManyRequests), 10);
    let (_, refused) = results
        .iter()
        .find(|(s, _)| *s == Status::TooManyRequests)
        .unwrap();
    assert!(
        refused.contains("Too many signups from your network"),
        "{refused}"
    );
    assert_eq!(user_count(&app).await, 10);

    let elsewhere = app.new_browser().await;
    let (status, _) = signup_from(&elsewhere, "10.6.6.6", &unique_email("real"), "Real").await;
    assert_eq!(status, Status::SeeOther, "another address still signs up");
}

#[rocket::async_test]
async fn probing_which_emails_are_taken_through_signup_is_throttled() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Hana").await;
    let prober = app.new_browser().await;
    for i in 1..=30 {
        let (status, page) = signup_from(&prober, "10.7.7.7", &email, "Prober").await;
        assert_eq!(status, Status::UnprocessableEntity, "attempt {i}");
        assert!(page.contains("already exists"), "{page}");
    }
    let (status, page) = signup_from(&prober, "10.7.7.7", &email, "Prober").await;
    assert_eq!(status, Status::TooManyRequests);
    assert!(!page.contains("already exists"), "{page}");
    assert!(
        page.contains(r#"value="Prober""#),
        "what was typed is kept: {page}"
    );
}

#[rocket::async_test]
async fn oversized_emails_and_passwords_are_refused_before_any_work() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Ian").await;
    let long_email = format!("{}@example.com", "a".repeat(250));
    let res = app.login(&long_email, PASSWORD).await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    let page = res.into_string().await.unwrap();
    assert!(page.contains("That email is too long"), "{page}");

    let huge = "x".repeat(100_000);
    let started = Instant::now();
    let res = app.login(&email, &huge).await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    let page = res.into_string().await.unwrap();
    assert!(page.contains("That password is too long"), "{page}");
    assert!(!page.contains(&huge[..100]), "the password was echoed");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        login_throttle_keys(&app).await.is_empty(),
        "counted: {:?}",
        login_throttle_keys(&app).await
    );

    // Signup refuses such an email on its field, keeping what was typed.
    let (status, page) =
        signup_from(&app.new_browser().await, "10.8.8.8", &long_email, "Ian").await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert!(page.contains("Use at most 254 characters."), "{page}");
    assert!(page.contains(r#"value="Ian""#), "{page}");

    // A password quire would accept (1024 characters) is still checked.
    let res = app.login(&email, &"y".repeat(1024)).await;
    assert_eq!(res.status(), Status::Unauthorized);
}

#[rocket::async_test]
async fn the_throttle_table_keeps_nothing_that_was_typed() {
    let app = TestApp::spawn().await;
    let (_, email) = app.author("Jo").await;
    let b = app.new_browser().await;
    // Spelled four ways, it is one account: the fifth failure locks it.
    let shouted = format!("  {}  ", email.to_uppercase());
    for typed in [&shouted, &email, &email.to_uppercase(), &shouted] {
        assert_eq!(
            b.login(typed, "not it at all, sorry").await.status(),
            Status::Unauthorized
        );
    }
    assert_eq!(
        b.login(&email, "not it at all, sorry").await.status(),
        Status::TooManyRequests
    );
    // Someone typed their passphrase into the email field.
    let passphrase = "purple elephants dance at midnight";
    b.login(passphrase, "whatever").await;
    let long_email = format!("{}@example.com", "z".repeat(240));
    b.login(&long_email, "whatever").await;

    let keys = login_throttle_keys(&app).await;
    // Jo's, the passphrase's and the long email's rows, and the client's.
    assert_eq!(keys.len(), 4, "{keys:?}");
    let local_part = email.split('@').next().unwrap();
    for key in &keys {
        assert!(key.len() <= 64, "{key}");
        for typed in [local_part, "example", "purple", "zzzz"] {
            assert!(!key.contains(typed), "{key} holds {typed:?}");
        }
    }
    assert!(keys.contains(&account_key(&app, &shouted)));
}

/// After an argon2 upgrade, an account whose hash predates it answers a wrong password
/// as slowly as an unknown email does (both production cost).
#[rocket::async_test]
async fn after_a_parameter_upgrade_old_accounts_answer_as_slowly_as_unknown_ones() {
    let app = TestApp::spawn_with(|f| {
        f.merge(("auth.argon2.memory_kib", 19456))
            .merge(("auth.argon2.iterations", 2))
    })
    .await;
    let (_, email) = app.author("Kai").await;
    store_old_hash(&app, &email, PASSWORD, 256).await;

    let b = app.new_browser().await;
    b.csrf_token().await;
    let mut old = Duration::MAX;
    let mut unknown = Duration::MAX;
    // Four tries: a fifth wrong password would meet the account's lockout.
    for _ in 0..4 {
        let t = Instant::now();
        assert_eq!(
            b.login(&email, "wrong but long enough").await.status(),
            Status::Unauthorized
        );
        old = old.min(t.elapsed());
        let t = Instant::now();
        let nobody = unique_email("nobody");
        assert_eq!(
            b.login(&nobody, "wrong but long enough").await.status(),
            Status::Unauthorized
        );
        unknown = unknown.min(t.elapsed());
    }
    // Without the upgrade rule the old hash (m=256) would answer some 70 times faster;
    // the wide band keeps a loaded machine's scheduling noise from failing the test.
    let ratio = old.as_secs_f64() / unknown.as_secs_f64();
    assert!(
        (0.25..=4.0).contains(&ratio),
        "old hash {old:?}, unknown email {unknown:?}"
    );
    // The right password still works, and upgrades the hash.
    assert_eq!(b.login(&email, PASSWORD).await.status(), Status::SeeOther);
    let stored = password_hash(&app, &email).await;
    assert!(stored.contains("m=19456"), "{stored}");
}

/// A `quire serve` process on the test's database, killed when dropped.
struct Served {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

impl Served {
    async fn start(dir: &std::path::Path, db: &TestDatabase, trusted: &str) -> Served {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Rocket's logger writes warnings to stdout; both go to one file.
        let log = dir.join(format!("quire-{port}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = quire_command(dir, &db.url);
        cmd.arg("serve")
            .env("ROCKET_PORT", port.to_string())
            .env("ROCKET_ADDRESS", "127.0.0.1")
            .env("ROCKET_SECRET_KEY", SECRET_KEY)
            .env("ROCKET_AUTH", "{argon2={memory_kib=64,iterations=1}}")
            .env("ROCKET_TRUSTED_PROXIES", trusted)
            .env("ROCKET_LOG_LEVEL", "critical")
            .env("ROCKET_CLI_COLORS", "false")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let served = Served {
            child: cmd.spawn().expect("quire starts"),
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let started = Instant::now();
        loop {
            if let Ok(res) = http.get(format!("{}/healthz", served.base)).send().await {
                if res.status() == 200 {
                    return served;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "quire did not start: {}",
                served.log()
            );
            rocket::tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Requests as a reverse proxy on this machine would forward them.
    async fn forwarded_requests(&self, n: usize) {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        for i in 0..n {
            let res = http
                .get(format!("{}/", self.base))
                .header("X-Forwarded-For", format!("203.0.113.{}", i % 200 + 1))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[rocket::async_test]
async fn behind_an_untrusted_proxy_quire_warns_once_that_every_client_looks_alike() {
    const WARNING: &str = "trusted_proxies is empty";
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::create(dir.path());

    let untold = Served::start(dir.path(), &db, "[]").await;
    untold.forwarded_requests(30).await;
    let log = untold.log();
    assert_eq!(log.matches(WARNING).count(), 1, "{log}");
    assert!(log.contains("from 127.0.0.1"), "{log}");
    drop(untold);

    let told = Served::start(dir.path(), &db, "[\"127.0.0.1\"]").await;
    told.forwarded_requests(30).await;
    let log = told.log();
    assert!(!log.contains(WARNING), "{log}");
}

//! Benchmark seeding (bench/run.sh): writes posts of about 2 KB through quire's own code
//! (the renderer and sanitizer, `db::posts::insert` with the post's tags: what
//! `POST /posts` runs, without HTTP, sessions and CSRF in between), so 100,000 posts take
//! minutes instead of the better part of an hour. Not part of quire: nothing ships it.
//!
//!   cargo run --release --example seed -- TOTAL START EMAIL...
//!
//! Writes posts numbered START to START+TOTAL-1 to the database quire's configuration
//! names (Rocket.toml or ROCKET_CONFIG, ROCKET_* variables, as `quire` reads them), spread
//! round-robin over the existing local accounts EMAIL..., published a minute apart in
//! the past (post n at 2023-11-14 22:13 UTC + n minutes), with two of eight tags each.
//! "garden" is in every post. Prints how long it took.

use std::process::ExitCode;
use std::time::Instant;

use quire::db::posts::{self, NewPost};
use quire::db::{users, Pool};
use quire::domain::UserId;
use quire::excerpt::excerpt_source;
use quire::render::{render_all, slug_for};
use time::OffsetDateTime;

const WORDS: &[&str] = &[
    "garden", "river", "stone", "quiet", "morning", "letter", "window", "harbour", "lantern",
    "meadow", "journey", "winter", "summer", "orchard", "bridge", "market", "island", "forest",
    "candle", "signal", "engine", "compass", "mirror", "thunder", "valley", "ribbon", "pocket",
    "silver", "copper", "autumn",
];
const TAGS: &[&str] = &[
    "rust", "notes", "travel", "cooking", "music", "books", "sqlite", "web",
];
/// Posts written at once: rendering runs on the blocking pool while SQLite writes.
const IN_FLIGHT: usize = 4;
const FIRST_TIME: i64 = 1_700_000_000;

/// About 2 KB of Markdown, every post a little different (as bench/seed.py wrote them).
fn body_of(n: usize) -> String {
    let mut paras = Vec::new();
    let mut size = 0;
    let mut i = n;
    while size < 2000 {
        let words: Vec<&str> = (0..40)
            .map(|j| WORDS[(i * 7 + j * 3) % WORDS.len()])
            .collect();
        let para = format!("The garden {}.", words.join(" "));
        size += para.len() + 2;
        paras.push(para);
        i += 1;
    }
    paras.join("\n\n")
}

async fn write_post(db: &Pool, author: UserId, n: usize) -> Result<(), String> {
    let title = format!("Bench post {n} about {}", WORDS[n % WORDS.len()]);
    let body = body_of(n);
    let tag_field = format!("{}, {}", TAGS[n % TAGS.len()], TAGS[(n / 3) % TAGS.len()]);
    let tags = quire::web::tags::parse_tags(&tag_field).map_err(|e| e.join(" "))?;
    let source = excerpt_source(&body, "");
    let rendered = render_all(&[&body, source])
        .await
        .map_err(|(_, e)| e.to_string())?;
    let at = OffsetDateTime::from_unix_timestamp(FIRST_TIME + 60 * n as i64)
        .map_err(|e| e.to_string())?;
    let now = quire::db::current_time();
    let new = NewPost {
        author_id: author,
        title: &title,
        body_md: &body,
        body_html: &rendered[0].html,
        body_text: &rendered[0].text,
        excerpt_md: "",
        excerpt_html: &rendered[1].html,
        published: true,
        publish_at: Some(at),
        now,
    };
    posts::insert(db, &new, &slug_for(&title), &tags)
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

async fn run(args: &[String]) -> Result<(), String> {
    let [total, start, emails @ ..] = args else {
        return Err("usage: seed TOTAL START EMAIL...".into());
    };
    let total: usize = total.parse().map_err(|_| "TOTAL: a number")?;
    let start: usize = start.parse().map_err(|_| "START: a number")?;
    if emails.is_empty() {
        return Err("name at least one author's email".into());
    }
    let figment = quire::config::figment();
    let db_config: rocket_db_pools::Config = figment
        .extract_inner("databases.quire")
        .map_err(|e| format!("databases.quire: {e}"))?;
    let db = Pool::connect(&db_config).await.map_err(|e| e.to_string())?;
    db.migrate().await.map_err(|e| e.to_string())?;
    let mut authors = Vec::new();
    for email in emails {
        let user = users::local_by_email(&db, email)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no local account {email}"))?;
        authors.push(user.id);
    }
    let started = Instant::now();
    let numbers: Vec<usize> = (start..start + total).collect();
    for batch in numbers.chunks(IN_FLIGHT) {
        let writes = batch
            .iter()
            .map(|&n| write_post(&db, authors[n % authors.len()], n));
        for result in rocket::futures::future::join_all(writes).await {
            result?;
        }
    }
    let took = started.elapsed().as_secs_f64();
    println!(
        "{total} posts in {took:.1} s ({:.0} posts/s)",
        total as f64 / took.max(1e-9)
    );
    Ok(())
}

#[rocket::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seed: {e}");
            ExitCode::FAILURE
        }
    }
}

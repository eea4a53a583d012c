//! Benchmark helper (bench/run.sh): how long one password verification takes with the
//! configured argon2 parameters (quire's configuration, as `quire` reads it; production
//! argon2id by default), through quire's own hashing workers, one at a time. Prints the
//! median of 15, in milliseconds.
//!
//!   cargo run --release --example hash_time

use std::time::Instant;

use quire::auth::password::Hasher;
use quire::config::Config;

#[rocket::main]
async fn main() -> Result<(), String> {
    let config = Config::from_figment(&quire::config::figment())?;
    let hasher = Hasher::new(config.auth.argon2, 1)?;
    let hash = hasher
        .hash("a password to time the hash with")
        .await
        .map_err(|e| e.to_string())?;
    let mut times = Vec::new();
    for _ in 0..15 {
        let started = Instant::now();
        hasher
            .verify("a password to time the hash with", Some(&hash))
            .await
            .map_err(|e| e.to_string())?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!("{:.2}", times[times.len() / 2]);
    Ok(())
}

//! `mino bench`: prints the cost of the security primitives on this
//! machine, against a baseline measured in the same run, so the figures in
//! BENCHMARKS.md can be reproduced rather than trusted.

use std::time::{Duration, Instant};

use super::auth::{password, secret};

fn stats(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = samples.iter().map(|d| ms(*d)).sum::<f64>() / samples.len() as f64;
    (ms(samples[0]), mean, ms(samples[samples.len() - 1]))
}

pub async fn run(rounds: usize) -> anyhow::Result<()> {
    println!(
        "Argon2id m={} KiB, t={}, p={}; {rounds} rounds each",
        password::MEMORY_KIB,
        password::ITERATIONS,
        password::PARALLELISM
    );

    // Baseline: the SHA-256 that authenticates every API-key request.
    let key = secret::new_api_key().0;
    let start = Instant::now();
    let n = 100_000;
    for _ in 0..n {
        std::hint::black_box(secret::sha256_hex(std::hint::black_box(&key)));
    }
    let sha_us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("baseline  sha256(api key)        {sha_us:>9.2} µs");

    let mut hashes = Vec::new();
    let mut stored = String::new();
    for _ in 0..rounds {
        let pw = password::Password::parse("correct horse battery".into(), "password")
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let t = Instant::now();
        stored = password::hash(pw).await?;
        hashes.push(t.elapsed());
    }
    let (min, mean, max) = stats(hashes);
    println!("argon2id  hash                   {mean:>9.2} ms  (min {min:.2}, max {max:.2})");

    let mut right = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        password::verify("correct horse battery".into(), Some(stored.clone())).await?;
        right.push(t.elapsed());
        let t = Instant::now();
        password::verify("correct horse battery".into(), None).await?;
        unknown.push(t.elapsed());
    }
    let (_, right_mean, _) = stats(right);
    let (_, unknown_mean, _) = stats(unknown);
    println!("argon2id  verify (known email)   {right_mean:>9.2} ms");
    println!("argon2id  verify (unknown email) {unknown_mean:>9.2} ms  (dummy hash; same work)");
    println!(
        "ratio     hash / sha256          {:>9.0}×",
        mean * 1000.0 / sha_us
    );
    Ok(())
}

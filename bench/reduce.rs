//! `mino-bench reduce [DIR]`: the llm extractor's page reduction on real
//! product pages (the product-pages dataset, default `../shared/datasets/
//! product-pages`): milliseconds per page, estimated tokens of the raw HTML
//! against the reduced page, and — so that "fewer tokens" is not bought by
//! dropping the answer — the share of the people's values (price, sku,
//! brand, …) still found in the reduced text, against the raw HTML's
//! share. Also the demo shop's pages. No database.

use std::time::Instant;

use mino::server::agents::extract::reduce::{reduce, CHARS_PER_TOKEN};
use mino::server::evaluate::dataset::{self, dataset_dir};

/// The default page token budget.
const BUDGET: usize = mino::model::DEFAULT_PAGE_TOKEN_BUDGET as usize;

pub async fn run(dir: Option<String>) -> anyhow::Result<()> {
    let dir = dir.map(Into::into).unwrap_or_else(dataset_dir);
    let pages = dataset::load(&dir)?;
    let mut rows = Vec::new();
    for p in &pages {
        rows.push((p.expected.clone(), p.html()?));
    }
    println!(
        "{} pages from {}; page token budget {BUDGET}",
        rows.len(),
        dir.display()
    );
    let mut raw_tokens = 0usize;
    let mut reduced_tokens = 0usize;
    let mut unlimited_tokens = 0usize;
    let mut truncated = 0usize;
    let (mut values, mut in_raw, mut in_reduced) = (0usize, 0usize, 0usize);
    let mut micros = Vec::new();
    let mut biggest = 0usize;
    // MINO_BENCH_MISSES=1 lists the values the reduction loses.
    let misses = std::env::var_os("MINO_BENCH_MISSES").is_some();
    for (expected, html) in &rows {
        biggest = biggest.max(html.len());
        let started = Instant::now();
        let r = reduce(html, BUDGET);
        micros.push(started.elapsed().as_micros() as f64);
        raw_tokens += r.raw_tokens;
        reduced_tokens += r.tokens;
        truncated += usize::from(r.truncated);
        unlimited_tokens += reduce(html, usize::MAX / CHARS_PER_TOKEN).tokens;
        let raw = html.to_lowercase();
        let text = r.text.to_lowercase();
        for (attribute, accepted) in expected {
            values += 1;
            let found = |hay: &str| {
                accepted
                    .iter()
                    .any(|v| !v.is_empty() && hay.contains(&v.to_lowercase()))
            };
            in_raw += usize::from(found(&raw));
            in_reduced += usize::from(found(&text));
            if misses && found(&raw) && !found(&text) {
                println!("  lost {attribute} {accepted:?}");
            }
        }
    }
    micros.sort_by(f64::total_cmp);
    let mean = micros.iter().sum::<f64>() / micros.len().max(1) as f64;
    let p95 = micros[(micros.len() * 95 / 100).min(micros.len().saturating_sub(1))];
    println!(
        "reduction: mean {:.1} ms, p95 {:.1} ms per page (largest page {} KB)",
        mean / 1000.0,
        p95 / 1000.0,
        biggest / 1024
    );
    println!(
        "tokens (≈{CHARS_PER_TOKEN} chars each): raw HTML {raw_tokens}, reduced without a budget {unlimited_tokens}, reduced within the budget {reduced_tokens} ({truncated} pages cut): {:.1}x fewer",
        raw_tokens as f64 / reduced_tokens.max(1) as f64
    );
    println!(
        "people's values present: raw HTML {in_raw}/{values} ({:.1} %), reduced page {in_reduced}/{values} ({:.1} %)",
        100.0 * in_raw as f64 / values.max(1) as f64,
        100.0 * in_reduced as f64 / values.max(1) as f64
    );

    // The demo shop's pages: small, one per markup style.
    let mut demo_raw = 0;
    let mut demo_reduced = 0;
    let started = Instant::now();
    let n = 400;
    for i in 1..=n {
        let html = mino::server::demo::pages_html(&mino::server::demo::product(i));
        let r = reduce(&html, BUDGET);
        demo_raw += r.raw_tokens;
        demo_reduced += r.tokens;
    }
    println!(
        "demo shop: {n} pages, {:.2} ms per page, tokens {demo_raw} → {demo_reduced} ({:.1}x fewer)",
        started.elapsed().as_secs_f64() * 1000.0 / n as f64,
        demo_raw as f64 / demo_reduced.max(1) as f64
    );
    Ok(())
}

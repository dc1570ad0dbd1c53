//! `mino-bench extract [DIR]`: the automatic rule on real product pages.
//!
//! Serves the product-pages dataset (default `../shared/datasets/product-
//! pages`; format and scoring in `evaluate::dataset`) from 127.0.0.1, each
//! page at its shop's own path, fetches every page through the http
//! agent (the same fetch, parse and extraction a run does, with price,
//! sku, availability, brand, currency, mpn and gtin as automatic fields)
//! and prints precision, recall and F1 per attribute. In the same run, as
//! the baseline, a structured-data-only extractor reads the same pages:
//! the first JSON-LD product's (else microdata's) values taken as they are.
//! Also prints pages/s end to end and the extraction time per page.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::IntoResponse;

use mino::server::agents::extract::Page;
use mino::server::agents::fetch::{self, FetchPolicy};
use mino::server::agents::sources::http::HttpAgent;
use mino::server::agents::{Agent, JobInput, Progress};
use mino::server::evaluate::baseline::structured_only;
use mino::server::evaluate::dataset::{
    self, dataset_dir, fields, predict, LabelledPage, Prediction, Report, ATTRIBUTES,
};

/// Pages by the path they are served at.
struct Served {
    pages: HashMap<String, String>,
}

async fn serve_page(State(served): State<Arc<Served>>, uri: Uri) -> impl IntoResponse {
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    match served.pages.get(&path) {
        Some(html) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html.clone(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such page").into_response(),
    }
}

/// Serves the pages on 127.0.0.1 at their paths; returns the base URL.
async fn serve(pages: &[(LabelledPage, String)]) -> anyhow::Result<String> {
    let served = Arc::new(Served {
        pages: pages
            .iter()
            .map(|(p, html)| (p.path(), html.clone()))
            .collect(),
    });
    let app = axum::Router::new().fallback(serve_page).with_state(served);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}"))
}

fn print_misses(report: &Report) {
    for m in &report.misses {
        println!(
            "  {} {:<12} {:?}: got {:?}, expected {:?}",
            &m.page[..m.page.len().min(8)],
            m.attribute,
            m.outcome,
            m.predicted.as_deref().unwrap_or("—"),
            m.expected
        );
    }
}

pub async fn run(dir: Option<String>) -> anyhow::Result<()> {
    let dir = dir.map(PathBuf::from).unwrap_or_else(dataset_dir);
    measure(&dir).await
}

async fn measure(dir: &Path) -> anyhow::Result<()> {
    let labelled = dataset::load(dir).with_context(|| {
        format!(
            "reading the product-pages dataset in {} (pass its directory, or set MINO_PRODUCT_PAGES)",
            dir.display()
        )
    })?;
    let mut pages = Vec::new();
    for p in labelled {
        let html = p.html()?;
        pages.push((p, html));
    }
    let bytes: usize = pages.iter().map(|(_, h)| h.len()).sum();
    println!(
        "{} pages ({:.1} MB of HTML) from {}",
        pages.len(),
        bytes as f64 / 1e6,
        dir.display()
    );
    let base = serve(&pages).await?;
    let policy = FetchPolicy {
        allow_private: true,
        ..FetchPolicy::default()
    };
    let agent = HttpAgent {
        client: fetch::client(&policy),
        policy,
    };
    let fields = fields();

    // The locale the scorer reads `$` with is the page's own (read before
    // the clock starts: it is scoring, not extraction).
    let locales: Vec<Option<String>> = pages
        .iter()
        .map(|(p, html)| Page::parse_at(html, Some(&format!("{base}{}", p.path()))).locale())
        .collect();

    // Mino: fetch and extract through the http agent, one page at a time.
    let mut report = Report::default();
    let started = Instant::now();
    for (i, (page, _)) in pages.iter().enumerate() {
        let url = format!("{base}{}", page.path());
        let job = JobInput {
            job_id: i as i64,
            attempt: 1,
            url: url.clone(),
            inputs: Default::default(),
            instructions: String::new(),
            instruction_version: 1,
            fields: fields.clone(),
            timeout_secs: 30,
            row_index: 0,
            wait_for: None,
            steps: Vec::new(),
        };
        let out = agent
            .run(&job, &Progress::default())
            .await
            .map_err(|e| anyhow::anyhow!("fetching {url}: {}", e.message))?;
        let values = out
            .values
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
            .collect();
        let locale = locales[i].clone();
        report.add(page, &Prediction { values, locale });
    }
    let end_to_end = started.elapsed();

    // Extraction alone, in process (parse + every field), Mino and baseline.
    let time = |f: &dyn Fn(&str, &str)| {
        let t = Instant::now();
        for (page, html) in &pages {
            f(html, &format!("{base}{}", page.path()));
        }
        t.elapsed()
    };
    let mino_extract = time(&|html, url| {
        std::hint::black_box(predict(html, url));
    });
    let mut baseline = Report::default();
    for (page, html) in &pages {
        baseline.add(page, &structured_only(html));
    }
    let baseline_extract = time(&|html, _| {
        std::hint::black_box(structured_only(html));
    });

    let per_page = |d: Duration| d.as_secs_f64() * 1000.0 / pages.len().max(1) as f64;
    println!("\nMino's automatic rule (through the http agent):");
    print!("{}", report.table());
    println!("\nBaseline, structured data only (JSON-LD/microdata values as written):");
    print!("{}", baseline.table());
    println!(
        "\nF1, Mino / baseline: {}",
        ATTRIBUTES
            .iter()
            .map(|(a, _)| format!("{a} {:.3} / {:.3}", report.f1(a), baseline.f1(a)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "End to end (serve, fetch, parse, extract 7 fields): {:.1} pages/s",
        pages.len() as f64 / end_to_end.as_secs_f64()
    );
    println!(
        "Extraction per page: Mino {:.2} ms, baseline {:.2} ms",
        per_page(mino_extract),
        per_page(baseline_extract)
    );
    if std::env::var_os("MINO_BENCH_MISSES").is_some() {
        println!("\nMino's misses:");
        print_misses(&report);
    }
    Ok(())
}

//! `mino-bench`: Mino's benchmarks, a binary of their own so that none of
//! them is compiled into the product or its tests. Each prints figures
//! measured against a baseline in the same run (BENCHMARKS.md has them).
//! The ones that need a server start the `mino` binary built next to this
//! one: `cargo build --release --no-default-features --features bench
//! --bins` builds both.

mod browser;
mod common;
mod core;
mod evaluation;
mod executor;
mod experiments;
mod export;
mod extract;
mod live;
mod llm;
mod machine;
mod reduce;
mod results;
mod usage;
mod webhooks;

use std::process::ExitCode;
use std::str::FromStr;

use mino::server::embedded_pg::EmbeddedPostgres;
use sqlx::postgres::PgConnectOptions;

const HELP: &str = "\
mino-bench — Mino's benchmarks, each against a baseline measured in the same run.

Usage: mino-bench BENCHMARK [SIZE]

Benchmarks:
  hashing [ROUNDS]
            The cost of password hashing against SHA-256 (no database)
  ingest [ROWS]
            Load a generated CSV of ROWS rows (default 1,000,000) through the
            upload path and with raw COPY, in a scratch database
  run [JOBS]
            Run JOBS rows (default 10,000) of the demo shop (a process on a
            core of its own) at concurrency 10, 50 and 200, in this process
            and in 3 `mino worker` processes, against a plain fetch loop and
            a fetch-extract-store loop; CPU per job of each part
  scale [JOBS]
            Run JOBS rows (default 100,000) of the demo shop with 6 `mino
            worker` processes on one Postgres: jobs/s, claims and writes per
            second, Postgres's CPU share and what one Postgres core can feed
  live [SUBSCRIBERS]
            Open SUBSCRIBERS (default 1,000) live streams on a running 5,000-job
            execution of a `mino serve` child; print delivery latency and memory
  results [JOBS]
            Build a finished JOBS-job execution (default 1,000,000); measure the
            filtered job list (REST and page) under 20 clients and a bulk set
            of 100,000 expected values
  export [JOBS]
            Export a finished JOBS-job execution (default 1,000,000) as CSV and
            XLSX through the API and with Postgres COPY
  webhooks [DELIVERIES]
            Queue DELIVERIES webhook deliveries (default 20,000) for a local
            receiver against a plain client posting the same signed bodies
  browser [PAGES]
            PAGES demo pages (default 500, a fifth written by script) through
            the browser source at concurrency 4 and 8, against a plain loop with
            the same CDP crate and Chromium; the cost of a screenshot; 10,000
            pages through the http source (keeping them) and the snapshot source
  llm [JOBS] [ANSWER_MS]
            JOBS demo pages (default 1,000) through the http source and the
            llm extractor against a local endpoint answering after ANSWER_MS
            (default 0: instantly), at concurrency 10 and 50, against a plain
            fetch-and-post loop and against Mino's rules-only executor on the
            same pages (what the executor's bookkeeping alone allows)
  evaluation [JOBS]
            Judge a finished JOBS-job execution (default 1,000,000; 5 fields,
            two of them 2 KB texts under text similarity) and compute its
            metrics with bootstrap intervals, against one SQL aggregate of the
            same counts; import a JOBS-line JSON Lines file against COPY
  experiment [ROWS]
            An experiment of 4 variants × ROWS rows (default 10,000) from
            kept pages with the rules extractor, against one snapshot run of
            4 × ROWS rows; its REST read under 20 clients while it runs
  usage [ATTEMPTS]
            An organization's usage rollup standing for ATTEMPTS attempts
            (default 10,000,000) over 12 months: the usage REST API and page
            under 20 clients, against the same rollup query sent straight
            to Postgres
  org-export [JOBS]
            Export an organization holding a JOBS-job execution (default
            1,000,000) as one zip through the API: MB/s and the server's
            peak memory, against raw COPY of the same tables
  reduce [DIR]
            The llm extractor's page reduction on the product-pages dataset:
            ms per page, tokens before and after, and the share of the
            people's values still in the reduced text (no database)
  extract [DIR]
            Score the automatic rule on the product-pages dataset (default
            ../shared/datasets/product-pages) through the http agent, against
            a structured-data-only baseline; MINO_BENCH_MISSES=1 lists every
            miss (no database)

The database: DATABASE_URL, else the embedded Postgres in MINO_DATA_DIR
(default ./.mino). Benchmarks that write work in a scratch database they
drop afterwards.
";

/// The size argument (`1_000_000` and `1,000,000` read as 1000000).
fn size<T: FromStr>(default: T) -> T {
    std::env::args()
        .nth(2)
        .and_then(|n| n.replace(['_', ','], "").parse().ok())
        .unwrap_or(default)
}

/// Runs `bench` against the configured Postgres (started, and stopped
/// afterwards, when embedded).
async fn with_database<F, Fut>(bench: F) -> anyhow::Result<()>
where
    F: FnOnce(PgConnectOptions) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return bench(PgConnectOptions::from_str(&url)?).await;
    }
    let dir = std::env::var_os("MINO_DATA_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| ".mino".into());
    let mut pg = EmbeddedPostgres::start(&dir).await?;
    let result = bench(pg.connect_options()).await;
    pg.stop();
    result
}

#[tokio::main]
async fn main() -> ExitCode {
    let name = std::env::args().nth(1).unwrap_or_default();
    // `mino-bench run --help` explains and runs nothing.
    if std::env::args().skip(2).any(|a| a == "--help" || a == "-h") {
        print!("{HELP}");
        return ExitCode::SUCCESS;
    }
    let result = match name.as_str() {
        "hashing" => core::run(size(20)).await,
        "ingest" => with_database(|db| core::ingest(db, size(1_000_000))).await,
        "run" => with_database(|db| executor::run(db, size(10_000))).await,
        "scale" => with_database(|db| executor::scale(db, size(100_000))).await,
        // The demo shop as a process of its own (started by `run`, `scale`).
        "shop" => machine::serve_shop().await,
        "live" => with_database(|db| live::run(db, size(1_000))).await,
        "results" => with_database(|db| results::run(db, size(1_000_000))).await,
        "export" => with_database(|db| export::run(db, size(1_000_000))).await,
        "webhooks" => with_database(|db| webhooks::run(db, size(20_000))).await,
        "browser" => with_database(|db| browser::run(db, size(500))).await,
        "evaluation" => with_database(|db| evaluation::run(db, size(1_000_000))).await,
        "extract" => extract::run(std::env::args().nth(2)).await,
        "reduce" => reduce::run(std::env::args().nth(2)).await,
        "llm" => {
            let answer_ms = std::env::args()
                .nth(3)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            with_database(|db| llm::run(db, size(1_000), answer_ms)).await
        }
        "experiment" => with_database(|db| experiments::run(db, size(10_000))).await,
        "usage" => with_database(|db| usage::run(db, size(10_000_000))).await,
        "org-export" => with_database(|db| usage::run_export(db, size(1_000_000))).await,
        "" | "help" | "--help" | "-h" => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprintln!("mino-bench: unknown benchmark {other:?}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mino-bench {name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

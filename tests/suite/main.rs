//! Mino's integration tests, as one test binary: each module tests one part
//! of the product over the real router and a fresh Postgres database per
//! test (`#[sqlx::test]`). One binary instead of one per file because each
//! links all of Mino (about 260 MB): twenty of them took minutes to link and
//! gigabytes of disk. Tests that need a process of their own (they change
//! the environment or read process-wide counters) stay beside this folder:
//! `tests/browser_unavailable.rs` and `tests/metrics.rs`.
//!
//! Run one part with `cargo test --no-default-features --features ssr
//! --test suite -- browser::`.

#![cfg(feature = "ssr")]

#[path = "../common/mod.rs"]
mod common;

mod agents;
mod api;
mod audit;
mod authz_matrix;
mod batches;
mod browser;
mod data_rights;
mod demo;
mod embedded_pg;
mod eval_cli;
mod evaluation;
mod evaluation_sets;
mod executions;
mod experiments;
mod exports;
mod live;
mod llm;
mod mail;
mod pages;
mod product_pages;
mod projects;
mod queue;
mod ratelimit;
mod security;
mod usage;
mod versions;
mod webhooks;
mod workers;

//! Everything that only runs on the server: configuration, the database,
//! authentication, the business rules and the HTTP plumbing.

pub mod agents;
pub mod assets;
pub mod auth;
pub mod config;
pub mod csrf;
pub mod csv;
pub mod db;
pub mod demo;
pub mod embedded_pg;
pub mod eval_cli;
pub mod evaluate;
pub mod executor;
pub mod http;
pub mod ingest;
pub mod live;
pub mod mail;
pub mod metrics;
pub mod ratelimit;
pub mod rpc;
pub mod secrets;
pub mod security;
pub mod service;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod values;
pub mod webhooks;

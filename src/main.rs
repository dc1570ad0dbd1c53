//! `mino`: the web server (default), or `mino migrate`.

use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;

use mino::server::{config::Config, embedded_pg::EmbeddedPostgres, startup, telemetry};
use sqlx::postgres::PgConnectOptions;

const HELP: &str = "\
mino — run web-extraction agents over batches of websites and measure them.

Usage: mino [COMMAND]

Commands:
  serve     Run the web app (the default)
  migrate   Apply database migrations and exit
  worker    Run only workers (no web server): any number of processes on any
            number of machines can share one Postgres
  demo-site [ADDR]
            Serve only the demo shop (default 127.0.0.1:3200) under /demo
  eval      Run (or import) a batch through a Mino server's API and check
            accuracy thresholds, for CI: `mino eval --help`
  help      Show this help

Benchmarks are a binary of their own: `mino-bench help`.

Environment:
  LEPTOS_SITE_ADDR   address to listen on (default from Cargo.toml: 127.0.0.1:3000)
  DATABASE_URL       an external Postgres; unset = embedded Postgres in the data dir
  MINO_DATA_DIR      where local state lives (default ./.mino)
  MINO_PUBLIC_URL    the URL users reach Mino at, for invitation links
                     (https:// makes session cookies Secure and __Host-)
  MINO_LOG_FORMAT    text (default) or json
  MINO_TRUST_PROXY   1 to take client addresses from X-Forwarded-For
  MINO_WORKER_SLOTS  jobs this process runs at once (default 50; 0: no workers)
  MINO_SMTP_URL      send invitations by email too, e.g.
                     smtp://user:pass@host:587?tls=required or smtps://…:465
  MINO_SMTP_FROM     their sender (default: Mino <mino@localhost>)
  MINO_MAX_CONCURRENCY
                     caps every run's concurrency on this server (1-1000),
                     below the organizations' plan limits (default 50 each)
  MINO_WEBHOOK_RETRY_SECS
                     a failed webhook delivery's first retry delay (default 30;
                     each later retry waits twice as long, at most an hour)
  MINO_LEASE_SECS    how long a claim on a job lasts unrenewed (default 30):
                     how soon a crashed worker's jobs run again
  MINO_CHROMIUM      the browser agent's Chromium (default /usr/bin/chromium)
  MINO_BROWSER_SLOTS pages the browser agent renders at once in this process
                     (default two per core, at most 8)
  MINO_SECRET_KEY    seals model-provider API keys and webhook secrets at rest
                     (64 hex digits; default: generated into the data dir
                     as secret.key). Every process sharing a database needs
                     the same key.
  MINO_ALLOW_PRIVATE_TARGETS
                     1 lets agents and webhooks reach every loopback/private
                     address (default 0: of those, only this Mino's demo shop)
  RUST_LOG           log filter, e.g. info or mino=debug
";

enum Command {
    Serve,
    Worker,
    Migrate,
}

/// `mino demo-site [addr]`: the demo shop alone; no database.
async fn demo_site(addr: Option<String>) -> ExitCode {
    telemetry::init(false);
    let addr = addr.unwrap_or_else(|| "127.0.0.1:3200".into());
    let addr = match addr.parse() {
        Ok(a) => a,
        Err(_) => {
            eprintln!("mino demo-site: {addr:?} is not an address like 127.0.0.1:3200");
            return ExitCode::from(2);
        }
    };
    match mino::server::demo::serve(addr).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mino demo-site: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What `mino COMMAND --help` prints: the command's usage, and nothing is
/// run.
fn command_help(command: &str) -> Option<&'static str> {
    Some(match command {
        "serve" => "Usage: mino serve\n\nRun the web app, the REST API and this process's workers on \
                    LEPTOS_SITE_ADDR.\nWith DATABASE_URL unset it starts the embedded Postgres in \
                    MINO_DATA_DIR (one running mino per data dir).\nEnvironment: `mino help`.\n",
        "migrate" => "Usage: mino migrate\n\nApply the database migrations and exit (DATABASE_URL, \
                      else the embedded Postgres in MINO_DATA_DIR).\n",
        "worker" => "Usage: mino worker\n\nRun only workers and the webhook dispatcher, no web server, \
                     until Ctrl-C or SIGTERM.\nSet DATABASE_URL to the database the web app uses; any \
                     number of worker processes may share it.\nMINO_WORKER_SLOTS sets the jobs this \
                     process runs at once (default 50).\n",
        "demo-site" => "Usage: mino demo-site [ADDR]\n\nServe only the demo shop under /demo on ADDR \
                        (default 127.0.0.1:3200); no database.\n",
        _ => return None,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let first = std::env::args().nth(1);
    let asks_help = std::env::args().skip(2).any(|a| a == "--help" || a == "-h");
    if let (Some(cmd), true) = (first.as_deref(), asks_help) {
        if let Some(usage) = command_help(cmd) {
            print!("{usage}");
            return ExitCode::SUCCESS;
        }
    }
    let command = match first.as_deref() {
        None | Some("serve") => Command::Serve,
        Some("migrate") => Command::Migrate,
        Some("worker") => Command::Worker,
        Some("demo-site") => return demo_site(std::env::args().nth(2)).await,
        Some("eval") => {
            let args: Vec<String> = std::env::args().skip(2).collect();
            let mut out = std::io::stdout();
            return ExitCode::from(mino::server::eval_cli::run(&args, &mut out).await);
        }
        Some("help") | Some("--help") | Some("-h") => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprintln!("mino: unknown command {other:?}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    match run(command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mino: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Leptos options from `LEPTOS_*` (as cargo-leptos sets them), else from
/// Cargo.toml's `[package.metadata.leptos]`, so the built binary runs from
/// the repository root with nothing set.
fn leptos_options() -> anyhow::Result<leptos::config::LeptosOptions> {
    let from_env = std::env::var_os("LEPTOS_OUTPUT_NAME").is_some();
    let conf = leptos::config::get_configuration(if from_env { None } else { Some("Cargo.toml") })
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot read the Leptos configuration ({e}). Run mino from the repository root, \
                 or set LEPTOS_OUTPUT_NAME, LEPTOS_SITE_ROOT and LEPTOS_SITE_ADDR."
            )
        })?;
    Ok(conf.leptos_options)
}

async fn run(command: Command) -> anyhow::Result<()> {
    let leptos_options = leptos_options()?;
    let config = Config::from_env(leptos_options.site_addr)
        .map_err(|e| anyhow::anyhow!("configuration problems:\n{e}"))?;
    telemetry::init(config.log_json);

    let mut embedded = None;
    let options = match &config.database_url {
        Some(url) => PgConnectOptions::from_str(url)?,
        None => {
            let pg = EmbeddedPostgres::start(&config.data_dir).await?;
            let options = pg.connect_options();
            embedded = Some(pg.supervise());
            options
        }
    };
    let result = async {
        let db = startup::connect(options).await?;
        startup::migrate(&db).await?;
        if !matches!(command, Command::Migrate) {
            mino::server::secrets::prepare(&db, config.secret_key.as_ref(), &config.data_dir)
                .await?;
        }
        match command {
            Command::Migrate => {
                tracing::info!("migrations applied");
                Ok(())
            }
            Command::Worker => {
                let (stop, stopped) = tokio::sync::watch::channel(false);
                let hub = mino::server::live::Hub::start(db.clone(), stopped.clone());
                let webhooks = start_webhooks(&db, &config, hub.clone(), stopped.clone());
                mino::server::service::usage::spawn_budget_checks(db.clone(), stopped.clone());
                let workers = start_workers(&db, &config, hub, stopped);
                startup::shutdown_signal().await;
                let _ = stop.send(true);
                let _ = workers.await;
                let _ = webhooks.await;
                db.close().await;
                Ok(())
            }
            Command::Serve => {
                // One LISTEN connection per process, for workers and live views.
                let (stop, stopped) = tokio::sync::watch::channel(false);
                let hub = mino::server::live::Hub::start(db.clone(), stopped.clone());
                let webhooks = start_webhooks(&db, &config, hub.clone(), stopped.clone());
                mino::server::service::usage::spawn_budget_checks(db.clone(), stopped.clone());
                let workers = start_workers(&db, &config, hub.clone(), stopped);
                tokio::task::spawn_blocking(mino::server::auth::password::warm_up);
                startup::spawn_session_cleanup(db.clone());
                mino::server::service::exports::spawn_cleanup(db.clone(), config.data_dir.clone());
                mino::server::service::jobs::spawn_screenshot_cleanup(db.clone());
                mino::server::ratelimit::spawn_prune(db.clone());
                mino::server::assets::precompress_in_background(
                    std::path::Path::new(leptos_options.site_root.as_ref())
                        .join(leptos_options.site_pkg_dir.as_ref()),
                );
                let addr = leptos_options.site_addr;
                let app =
                    startup::router(db.clone(), Arc::new(config.clone()), leptos_options, hub);
                let served = startup::serve(app, addr).await;
                // Running jobs are handed back to the queue before exit.
                let _ = stop.send(true);
                let _ = workers.await;
                let _ = webhooks.await;
                db.close().await;
                served
            }
        }
    }
    .await;
    if let Some(pg) = embedded {
        pg.stop().await;
    }
    result
}

/// Starts this process's webhook dispatcher; it stops with the workers.
fn start_webhooks(
    db: &sqlx::PgPool,
    config: &Config,
    hub: mino::server::live::Hub,
    stopped: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let settings = mino::server::webhooks::Settings::new(
        config.allow_private_targets,
        config.webhook_retry_base,
    );
    mino::server::webhooks::spawn(db.clone(), settings, hub, stopped)
}

/// Starts this process's workers; they stop when `stopped` turns true.
fn start_workers(
    db: &sqlx::PgPool,
    config: &Config,
    hub: mino::server::live::Hub,
    stopped: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    let settings = mino::server::executor::Settings {
        slots: config.worker_slots,
        allow_private_targets: config.allow_private_targets,
        demo_origin: mino::server::agents::fetch::DemoOrigin::of(&config.public_url),
        worker_id: format!(
            "{host}-{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..6]
        ),
        lease: std::time::Duration::from_secs(config.lease_secs),
    };
    tracing::info!(slots = settings.slots, worker = %settings.worker_id, "workers started");
    mino::server::executor::spawn(db.clone(), settings, hub, stopped)
}

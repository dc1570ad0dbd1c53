//! What every benchmark shares: the `mino` binary and a `mino serve` child
//! of it, peak memory readings, and the organization they measure in.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mino::server::auth::rbac::OrgCtx;

/// The `mino` binary built next to this one (`cargo build --release
/// --no-default-features --features bench --bins` builds both).
pub fn mino_exe() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?.with_file_name("mino");
    anyhow::ensure!(
        exe.exists(),
        "{} is missing: build it with `cargo build --release --no-default-features --features bench --bins`",
        exe.display()
    );
    Ok(exe)
}

/// A `mino serve` child over `options` with `worker_slots` workers, once it
/// answers `/readyz`: (child, base URL). `private_targets` lets its agents
/// fetch 127.0.0.1 (the demo shop).
pub async fn serve(
    options: &sqlx::postgres::PgConnectOptions,
    worker_slots: u32,
    private_targets: bool,
) -> anyhow::Result<(tokio::process::Child, String)> {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let mut command = tokio::process::Command::new(mino_exe()?);
    command
        .arg("serve")
        .env("DATABASE_URL", mino::server::db::url_for(options))
        .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
        .env("MINO_WORKER_SLOTS", worker_slots.to_string())
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    if private_targets {
        command.env("MINO_ALLOW_PRIVATE_TARGETS", "1");
    }
    let mut child = command.spawn()?;
    let http = reqwest::Client::new();
    let ready = Instant::now();
    while !http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("mino serve exited ({status}) before it was ready");
        }
        anyhow::ensure!(
            ready.elapsed() < Duration::from_secs(60),
            "mino serve did not start within a minute"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok((child, base))
}

/// A process's peak resident memory in KiB (Linux `VmHWM`).
fn peak_kib(status_file: &str) -> Option<u64> {
    std::fs::read_to_string(status_file).ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    })
}

/// This process's peak resident memory in KiB.
pub fn peak_rss_kib() -> u64 {
    peak_kib("/proc/self/status").unwrap_or(0)
}

/// A child process's peak resident memory in MB.
pub fn peak_mb(child: &tokio::process::Child) -> f64 {
    child
        .id()
        .and_then(|pid| peak_kib(&format!("/proc/{pid}/status")))
        .unwrap_or(0) as f64
        / 1024.0
}

/// The organization the benchmarks measure in: `user` as its owner, a read
/// key (its secret is returned), and limits no benchmark reaches — a
/// benchmark measures the work, not the plan's request rate.
pub async fn bench_org(db: &sqlx::PgPool, user: uuid::Uuid) -> anyhow::Result<(OrgCtx, String)> {
    use mino::server::auth::secret;
    let org: uuid::Uuid = sqlx::query_scalar(
        "insert into organizations (name, slug, max_executions_per_month,
                                    api_requests_per_minute, key_requests_per_minute)
         values ('Bench', 'bench', 1000, 1000000, 1000000) returning id",
    )
    .fetch_one(db)
    .await?;
    sqlx::query("insert into memberships (org_id, user_id, role) values ($1, $2, 'owner')")
        .bind(org)
        .bind(user)
        .execute(db)
        .await?;
    let (key, prefix, hash) = secret::new_api_key();
    sqlx::query(
        "insert into api_keys (org_id, name, prefix, key_hash, scopes)
         values ($1, 'bench', $2, $3, '{read}')",
    )
    .bind(org)
    .bind(&prefix)
    .bind(&hash)
    .execute(db)
    .await?;
    Ok((OrgCtx::member(org, user, mino::model::Role::Owner), key))
}

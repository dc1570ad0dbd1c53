//! The embedded Postgres: created on first start, reused after, recovers
//! from a crash that left a stale `postmaster.pid`, stops cleanly.

#![cfg(feature = "ssr")]

use std::time::Duration;

use mino::server::embedded_pg::EmbeddedPostgres;
use sqlx::Connection;

#[tokio::test]
async fn survives_a_crash_and_keeps_the_data() {
    let dir = std::env::temp_dir().join(format!("mino-embedded-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();

    let pg = EmbeddedPostgres::start(&dir)
        .await
        .expect("first start creates the cluster");
    assert!(dir.join("pg/PG_VERSION").exists());
    let mut conn = sqlx::PgConnection::connect_with(&pg.connect_options())
        .await
        .unwrap();
    // Unprepared (raw) SQL: two statements in one go.
    sqlx::raw_sql("create table kept (v text); insert into kept values ('still here')")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    // Crash: kill the postmaster outright. It leaves its pid file behind.
    let pid = pg.pid() as i32;
    unsafe { libc::kill(pid, libc::SIGKILL) };
    std::mem::forget(pg); // not stopped: this is the crash
    for _ in 0..100 {
        let gone = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true);
        if gone {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
    assert!(
        dir.join("pg/postmaster.pid").exists(),
        "the crash left a stale pid file"
    );

    let mut pg = EmbeddedPostgres::start(&dir)
        .await
        .expect("restart after a crash");
    let mut conn = sqlx::PgConnection::connect_with(&pg.connect_options())
        .await
        .unwrap();
    let v: String = sqlx::query_scalar("select v from kept")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(v, "still here");
    conn.close().await.unwrap();

    pg.stop();
    assert!(
        !dir.join("pg/postmaster.pid").exists(),
        "a clean stop removes the pid file"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A free port on 127.0.0.1 (bound, then let go).
fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn mino(dir: &std::path::Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_mino"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("DATABASE_URL")
        .env("MINO_DATA_DIR", dir)
        .env("MINO_WORKER_SLOTS", "0");
    c
}

async fn ready(base: &str) -> bool {
    match reqwest::get(format!("{base}/readyz")).await {
        Ok(r) => r.status() == 200,
        Err(_) => false,
    }
}

/// The postmaster's pid, from its pid file.
fn postmaster(dir: &std::path::Path) -> Option<i32> {
    std::fs::read_to_string(dir.join("pg/postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

#[tokio::test]
async fn a_data_dir_in_use_is_refused_and_a_dead_postgres_comes_back() {
    let dir = std::env::temp_dir().join(format!("mino-owned-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let addr = free_addr();
    let base = format!("http://{addr}");
    let mut serve = mino(&dir)
        .arg("serve")
        .env("LEPTOS_SITE_ADDR", &addr)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !ready(&base).await {
        assert!(serve.try_wait().unwrap().is_none(), "mino serve exited");
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "mino serve never became ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // `--help` explains and runs nothing: not even the data dir is made.
    let elsewhere = dir.join("never-made");
    let out = mino(&elsewhere)
        .args(["migrate", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: mino migrate"));
    assert!(!elsewhere.exists());

    // A second mino on the same data dir is refused, naming the first.
    let out = mino(&dir).arg("migrate").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "in use by another running Mino (pid {}",
            serve.id()
        )),
        "{err}"
    );
    assert!(err.contains("MINO_DATA_DIR"), "{err}");
    assert!(ready(&base).await, "the first mino kept serving");

    // Its Postgres killed outright, the first mino starts it again.
    let old = postmaster(&dir).expect("a running postmaster");
    unsafe { libc::kill(old, libc::SIGKILL) };
    let start = std::time::Instant::now();
    loop {
        let back = postmaster(&dir).is_some_and(|p| p != old);
        if back && ready(&base).await {
            break;
        }
        assert!(serve.try_wait().unwrap().is_none(), "mino exited instead");
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "Postgres did not come back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    unsafe { libc::kill(serve.id() as i32, libc::SIGTERM) };
    let status = serve.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!dir.join("pg/postmaster.pid").exists(), "stopped cleanly");
    let _ = std::fs::remove_dir_all(&dir);
}

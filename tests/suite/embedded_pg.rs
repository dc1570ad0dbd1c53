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

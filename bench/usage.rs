//! `mino-bench usage [ATTEMPTS]` and `mino-bench org-export [JOBS]`.
//!
//! usage: an organization whose `usage_daily` holds what ATTEMPTS
//! attempts (default 10,000,000) leave over twelve months — 10,000 runs of
//! ATTEMPTS/10,000 attempts each, one or two days each, a third of them
//! through one of two models — then, against a `mino serve` child, 20
//! clients for `MINO_BENCH_SECS` seconds each read the twelve months by
//! day, by project and by model over REST and the usage page, against the
//! same rollup query sent straight to Postgres.
//!
//! org-export: a finished execution of JOBS jobs (default 1,000,000) and
//! its organization exported as a zip through the API: MB/s and the
//! server's peak memory, against the same tables copied out raw.

use std::time::Instant;

use futures_util::StreamExt;

use crate::results::{in_scratch_database, load, Fixture};

pub async fn run(server: sqlx::postgres::PgConnectOptions, attempts: u64) -> anyhow::Result<()> {
    in_scratch_database(server, "usage", |options| usage(options, attempts)).await
}

pub async fn run_export(server: sqlx::postgres::PgConnectOptions, jobs: u32) -> anyhow::Result<()> {
    in_scratch_database(server, "orgexport", |options| export(options, jobs)).await
}

fn secs() -> u64 {
    std::env::var("MINO_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

async fn usage(options: sqlx::postgres::PgConnectOptions, attempts: u64) -> anyhow::Result<()> {
    // The fixture's person, organization and key; its execution is tiny.
    let f = Fixture::build(options, 10).await?;
    let org = f.ctx.org_id();
    let runs: i64 = 10_000;
    let per_run = (attempts as i64 / runs).max(1);
    // Twenty projects the runs belong to.
    sqlx::query("insert into projects (org_id, name) select $1, 'Project ' || g from generate_series(1, 20) g")
        .bind(org)
        .execute(&f.db)
        .await?;
    let projects: Vec<uuid::Uuid> =
        sqlx::query_scalar("select id from projects where org_id = $1 order by id")
            .bind(org)
            .fetch_all(&f.db)
            .await?;
    let t = Instant::now();
    // Each run: a day (or two, for every fifth), its jobs' attempts split
    // between no model and, for a third of the runs, one of two models.
    let rows = sqlx::query(
        "insert into usage_daily (org_id, day, project_id, execution_id, agent, extractor, model,
                                  jobs, attempts, input_tokens, output_tokens, cost_micros)
         select $1, current_date - (r % 365)::int - d,
                ($4::uuid[])[1 + r % array_length($4::uuid[], 1)], md5(r::text)::uuid,
                case when r % 4 = 0 then 'browser' else 'http' end,
                case when m > 0 then 'llm' else 'rules' end,
                case m when 0 then '' when 1 then 'model-a' else 'model-b' end,
                $2 / (1 + (r % 5 = 0)::int), $2 / (1 + (r % 5 = 0)::int),
                case when m > 0 then $2 * 2500 else 0 end,
                case when m > 0 then $2 * 90 else 0 end,
                $2 * (case when m > 0 then 4200 else 1000 end) / (1 + (r % 5 = 0)::int)
         from generate_series(1, $3::bigint) r
         cross join lateral (select (r % 3)::int as m) k
         cross join lateral generate_series(0, (r % 5 = 0)::int) d
         on conflict do nothing",
    )
    .bind(org)
    .bind(per_run)
    .bind(runs)
    .bind(&projects)
    .execute(&f.db)
    .await?
    .rows_affected();
    sqlx::query("analyze usage_daily").execute(&f.db).await?;
    let total: (i64, i64) = sqlx::query_as(
        "select count(*), coalesce(sum(attempts), 0)::bigint from usage_daily where org_id = $1",
    )
    .bind(org)
    .fetch_one(&f.db)
    .await?;
    println!(
        "usage_daily: {rows} rows standing for {} attempts over 12 months, written in {:.1} s",
        total.1,
        t.elapsed().as_secs_f64()
    );

    let to = chrono::Utc::now().date_naive();
    let from = to - chrono::Duration::days(364);
    let secs = secs();
    for group in ["day", "project", "model"] {
        let rest = {
            let (http, base, key) = (f.http.clone(), f.base.clone(), f.key.clone());
            let url =
                format!("{base}/api/v1/orgs/bench/usage?from={from}&to={to}&group_by={group}");
            load(secs, move || {
                let (http, url, key) = (http.clone(), url.clone(), key.clone());
                async move {
                    let r = http.get(&url).bearer_auth(&key).send().await?;
                    anyhow::ensure!(r.status().is_success(), "{}", r.status());
                    r.bytes().await?;
                    Ok(())
                }
            })
            .await?
        };
        let direct = {
            let db = f.db.clone();
            let group = mino::model::UsageGroup::parse(group).expect("a group");
            load(secs, move || {
                let db = db.clone();
                async move {
                    mino::server::db::usage::grouped(&db, org, from, to, group).await?;
                    Ok(())
                }
            })
            .await?
        };
        println!(
            "{}",
            rest.line(&format!("REST usage by {group}, 12 months"))
        );
        println!("{}", direct.line(&format!("  the rollup query by {group}")));
    }
    let page = {
        let (http, base, cookie) = (f.http.clone(), f.base.clone(), f.cookie.clone());
        let url = format!("{base}/o/bench/usage?from={from}&to={to}&group_by=model");
        load(secs, move || {
            let (http, url, cookie) = (http.clone(), url.clone(), cookie.clone());
            async move {
                let r = http
                    .get(&url)
                    .header("cookie", cookie)
                    .header("accept", "text/html")
                    .send()
                    .await?;
                anyhow::ensure!(r.status().is_success(), "{}", r.status());
                r.bytes().await?;
                Ok(())
            }
        })
        .await?
    };
    println!("{}", page.line("usage page by model, 12 months"));
    Ok(())
}

async fn export(options: sqlx::postgres::PgConnectOptions, jobs: u32) -> anyhow::Result<()> {
    let t = Instant::now();
    let f = Fixture::build(options, jobs).await?;
    println!(
        "built an organization with a {jobs}-row batch and a {jobs}-job execution in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let org = f.ctx.org_id();

    // Baseline: the export's own queries copied out raw in this process
    // (same rows, same order), nothing compressed, nothing sent.
    let t = Instant::now();
    let mut raw = 0usize;
    let mut conn = f.db.acquire().await?;
    for (_, query) in mino::server::service::org_export::TABLES {
        let query = query.replace("{org}", &org.to_string());
        let mut s = conn
            .copy_out_raw(&format!(
                "copy ({query}) to stdout with (format csv, header)"
            ))
            .await?;
        while let Some(chunk) = s.next().await {
            raw += chunk?.len();
        }
    }
    drop(conn);
    let copy_secs = t.elapsed().as_secs_f64();
    println!(
        "baseline, the export's queries as raw COPY: {:.1} MB of CSV in {copy_secs:.1} s = {:.1} MB/s",
        raw as f64 / 1e6,
        raw as f64 / 1e6 / copy_secs
    );

    let t = Instant::now();
    let res = f
        .http
        .post(format!("{}/api/v1/orgs/bench/export", f.base))
        .header("cookie", &f.cookie)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await?;
    anyhow::ensure!(res.status().is_success(), "export: {}", res.status());
    let first = t.elapsed();
    let mut zipped = 0usize;
    let mut res = res;
    while let Some(chunk) = res.chunk().await? {
        zipped += chunk.len();
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "organization export: {:.1} MB of zip in {secs:.1} s ({:.1} MB/s of zip; {:.1} MB/s of the raw CSV above); first byte after {} ms; server peak memory {:.0} MB",
        zipped as f64 / 1e6,
        zipped as f64 / 1e6 / secs,
        raw as f64 / 1e6 / secs,
        first.as_millis(),
        crate::results::peak_mb(&f.child)
    );
    Ok(())
}

//! `mino-bench evaluation [jobs]`: judging and aggregating at scale, and
//! imported runs.
//!
//! Builds a batch of `jobs` rows with five expected fields — title (exact
//! text), price (number), sku (exact) and two long texts of about 2 KB
//! (description, body) under the text similarity comparator — and a
//! finished execution over it whose values are partly wrong (every 7th
//! title, every 11th price missing, long texts with about one word in 20
//! changed and every 10th cut by a third). Then measures, each against a
//! baseline in the same run:
//!
//! 1. judging every job again (the path a comparator or expected-value
//!    change takes), in jobs/s and this process's peak memory;
//! 2. the run's metrics with their 95% bootstrap intervals
//!    (`metric_parts`, as the metrics endpoint computes them), against one
//!    SQL aggregate that counts the same tp/fp/fn per field, which must
//!    agree with them;
//! 3. importing a JSON Lines file of `jobs` lines (title, price, sku; the
//!    200 MB import limit rules out 2 KB texts at a million lines) as an
//!    `imported` run of a batch of the same rows without the long texts,
//!    against Postgres `COPY` of the same values into a table of the same
//!    shape.

use std::time::Instant;

use mino::model::{Comparator, ComparatorOptions, OutputField};
use mino::server::db;
use mino::server::service::{batches, executions, ground_truth, imports, projects};

use crate::common::{bench_org, peak_rss_kib};
use crate::results::in_scratch_database;

/// Distinct (expected, extracted) long-text pairs; row n uses pair n % TEXTS.
const TEXTS: usize = 1_000;
/// Bytes in an expected long text.
const TEXT_BYTES: usize = 2_048;

pub async fn run(server: sqlx::postgres::PgConnectOptions, jobs: u32) -> anyhow::Result<()> {
    in_scratch_database(server, "evaluation", |options| measure(options, jobs)).await
}

/// A small deterministic generator (xorshift64*), so every run measures
/// the same texts.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// An expected text of about `TEXT_BYTES` bytes and the extracted text an
/// agent might give for it: about one word in 20 different, and every
/// 10th text missing its last third.
fn text_pair(rng: &mut Rng, n: usize) -> (String, String) {
    const SYLLABLES: [&str; 24] = [
        "ka", "lo", "mi", "ter", "san", "vo", "rel", "du", "pra", "en", "sto", "ma", "ri", "gen",
        "ta", "bor", "li", "cu", "ne", "fal", "zo", "her", "ap", "wi",
    ];
    let word = |rng: &mut Rng| -> String {
        (0..1 + rng.below(3))
            .map(|_| SYLLABLES[rng.below(SYLLABLES.len())])
            .collect()
    };
    let (mut want, mut got) = (Vec::new(), Vec::new());
    let mut bytes = 0;
    while bytes < TEXT_BYTES {
        let w = word(rng);
        bytes += w.len() + 1;
        got.push(if rng.below(20) == 0 {
            word(rng)
        } else {
            w.clone()
        });
        want.push(w);
    }
    if n.is_multiple_of(10) {
        got.truncate(got.len() * 2 / 3);
    }
    (want.join(" "), got.join(" "))
}

/// A batch of `jobs` rows with an expected title, price and sku; with
/// `long_fields`, also description and body columns (placeholders the
/// benchmark overwrites with long texts in SQL).
fn rows_csv(jobs: u32, long_fields: bool) -> String {
    let (header, tail) = if long_fields {
        (",gt_description,gt_body", ",-,-")
    } else {
        ("", "")
    };
    let mut csv = String::with_capacity(jobs as usize * 80);
    csv.push_str(&format!("url,gt_title,gt_price,gt_sku{header}\n"));
    for n in 1..=jobs {
        csv.push_str(&format!(
            "https://shop{}.example.com/p/{n},Product {n},{}.{:02},SKU-{n}{tail}\n",
            n % 97,
            n % 500,
            n % 100
        ));
    }
    csv
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Forgets this process's peak memory so far (Linux: `clear_refs` 5), so
/// the next `peak_rss_kib` reading is the peak of what runs in between.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

async fn measure(options: sqlx::postgres::PgConnectOptions, jobs: u32) -> anyhow::Result<()> {
    let err = |e: mino::error::AppError| anyhow::anyhow!("{e}");
    let t = Instant::now();
    let db = mino::server::startup::connect(options.clone()).await?;
    mino::server::startup::migrate(&db).await?;
    let user: uuid::Uuid = sqlx::query_scalar(
        "insert into users (email, name, password_hash) values ('bench@example.com', 'Bench', '-') returning id",
    )
    .fetch_one(&db)
    .await?;
    let (ctx, _) = bench_org(&db, user).await?;
    let project = projects::create(&db, &ctx, "Bench evaluation", "", "")
        .await
        .map_err(err)?;

    // The batch: short fields from the CSV; the long texts are written
    // into the rows in SQL from a pool of pairs (a 4 GB CSV would measure
    // the upload, which `mino-bench ingest` already does).
    let batch = batches::ingest_text(
        &db,
        &ctx,
        project.id,
        Default::default(),
        rows_csv(jobs, true),
    )
    .await
    .map_err(err)?;
    for name in ["description", "body"] {
        let fields = db::projects::fetch_fields(&db, ctx.org_id(), project.id).await?;
        let field = fields
            .into_iter()
            .find(|f| f.name == name)
            .ok_or_else(|| anyhow::anyhow!("no field {name}"))?;
        projects::update_field(
            &db,
            ctx.actor(),
            project.id,
            OutputField {
                comparator: Comparator::TextSimilarity,
                comparator_options: ComparatorOptions {
                    threshold: Some(0.8),
                    ..Default::default()
                },
                ..field
            },
            None,
        )
        .await
        .map_err(err)?;
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let pairs: Vec<[(String, String); 2]> = (0..TEXTS)
        .map(|n| [text_pair(&mut rng, n), text_pair(&mut rng, n + 5)])
        .collect();
    sqlx::query(
        "create table bench_texts (i int primary key, want_description text, got_description text,
                                   want_body text, got_body text)",
    )
    .execute(&db)
    .await?;
    sqlx::query(
        "insert into bench_texts select * from unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[])",
    )
    .bind((0..TEXTS as i32).collect::<Vec<_>>())
    .bind(pairs.iter().map(|p| p[0].0.clone()).collect::<Vec<_>>())
    .bind(pairs.iter().map(|p| p[0].1.clone()).collect::<Vec<_>>())
    .bind(pairs.iter().map(|p| p[1].0.clone()).collect::<Vec<_>>())
    .bind(pairs.iter().map(|p| p[1].1.clone()).collect::<Vec<_>>())
    .execute(&db)
    .await?;
    let seq: i64 = sqlx::query_scalar("select seq from batches where id = $1")
        .bind(batch.id)
        .fetch_one(&db)
        .await?;
    sqlx::query(
        "update batch_rows r set ground_truth = json_build_object(
             'title', r.ground_truth->'title', 'price', r.ground_truth->'price',
             'sku', r.ground_truth->'sku',
             'description', t.want_description, 'body', t.want_body)
         from bench_texts t where r.batch_seq = $1 and t.i = r.row_index % $2",
    )
    .bind(seq)
    .bind(TEXTS as i32)
    .execute(&db)
    .await?;
    let execution = executions::start(
        &db,
        ctx.actor(),
        batch.id,
        executions::StartRequest {
            mode: "production".into(),
            max_retries: Some(0),
            ..Default::default()
        },
    )
    .await
    .map_err(err)?;
    sqlx::query(
        "update jobs j set state = 'succeeded', finished_at = now(),
                extracted = json_build_object(
                    'title', case when j.row_index % 7 = 0 then 'Another product'
                                  else r.ground_truth->>'title' end,
                    'price', case when j.row_index % 11 = 0 then null
                                  else r.ground_truth->>'price' end,
                    'sku', r.ground_truth->>'sku',
                    'description', t.got_description, 'body', t.got_body)
         from batch_rows r, bench_texts t
         where j.execution_id = $1 and r.batch_seq = $2 and r.row_index = j.row_index
           and t.i = j.row_index % $3",
    )
    .bind(execution.id)
    .bind(seq)
    .bind(TEXTS as i32)
    .execute(&db)
    .await?;
    sqlx::query("update executions set state = 'completed', finished_at = now() where id = $1")
        .bind(execution.id)
        .execute(&db)
        .await?;
    sqlx::query("vacuum analyze jobs").execute(&db).await?;
    sqlx::query("vacuum analyze batch_rows")
        .execute(&db)
        .await?;
    let size: String = sqlx::query_scalar(
        "select pg_size_pretty(pg_total_relation_size('jobs') + pg_total_relation_size('batch_rows'))",
    )
    .fetch_one(&db)
    .await?;
    println!(
        "built a batch and a finished execution of {jobs} jobs × 5 fields (2 long texts of ~{TEXT_BYTES} B) in {:.1} s; jobs + rows take {size}",
        t.elapsed().as_secs_f64()
    );

    // 1. Judging every job: 2 × jobs text similarities on 2 KB texts.
    reset_peak();
    let base_kib = peak_rss_kib();
    let t = Instant::now();
    let mut tx = db.begin().await?;
    let judged = ground_truth::judge_again(&mut tx, &[execution.id], None)
        .await
        .map_err(err)?;
    tx.commit().await?;
    let took = t.elapsed().as_secs_f64();
    println!(
        "judge all          {judged} jobs in {took:>7.2} s  {:>8.0} jobs/s  peak memory {:.0} MiB (+{:.0} MiB)",
        judged as f64 / took,
        mib(peak_rss_kib()),
        mib(peak_rss_kib().saturating_sub(base_kib))
    );
    // Judging alone, without the database: the same comparisons in this
    // process on one core, as the baseline for what the database adds.
    let fields = db::projects::fetch_fields(&db, ctx.org_id(), project.id).await?;
    let sample: Vec<(
        sqlx::types::Json<serde_json::Value>,
        sqlx::types::Json<serde_json::Value>,
    )> = sqlx::query_as(
        "select j.extracted, r.ground_truth from jobs j
             join batch_rows r on r.batch_seq = $2 and r.row_index = j.row_index
             where j.execution_id = $1 order by j.id limit 10000",
    )
    .bind(execution.id)
    .bind(seq)
    .fetch_all(&db)
    .await?;
    let t = Instant::now();
    for (got, want) in &sample {
        let empty = serde_json::Map::new();
        let v = mino::server::evaluate::evaluate_job(
            &fields,
            got.0.as_object().unwrap_or(&empty),
            want.0.as_object().unwrap_or(&empty),
        );
        std::hint::black_box(v);
    }
    let took = t.elapsed().as_secs_f64();
    println!(
        "baseline: judging in memory, {} jobs in {took:.2} s  {:>8.0} jobs/s (one core, no database)",
        sample.len(),
        sample.len() as f64 / took
    );

    // 2. Metrics with intervals against one SQL aggregate of the counts.
    sqlx::query("analyze jobs").execute(&db).await?;
    reset_peak();
    let base_kib = peak_rss_kib();
    let t = Instant::now();
    let parts = db::executions::metric_parts(&db, execution.id).await?;
    let took = t.elapsed().as_secs_f64();
    println!(
        "metrics + intervals        {took:>7.2} s  peak memory {:.0} MiB (+{:.0} MiB)",
        mib(peak_rss_kib()),
        mib(peak_rss_kib().saturating_sub(base_kib))
    );
    let t = Instant::now();
    db::executions::metric_parts(&db, execution.id).await?;
    println!(
        "metrics again (kept)       {:>7.3} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let counts: Vec<(String, f64, f64, f64)> = sqlx::query_as(
        "select f.key,
                sum(case when f.value->>'tp' is not null then (f.value->>'tp')::float8
                         when pass and got then 1 else 0 end),
                sum(case when f.value->>'fp' is not null then (f.value->>'fp')::float8
                         when got and not pass then 1 else 0 end),
                sum(case when f.value->>'fn' is not null then (f.value->>'fn')::float8
                         when not pass and (want or not got) then 1 else 0 end)
         from jobs j cross join lateral json_each(j.field_results) f
         cross join lateral (select coalesce((f.value->>'pass')::boolean, false) as pass,
                 coalesce(json_typeof(f.value->'extracted'), 'null') <> 'null' as got,
                 coalesce(json_typeof(f.value->'expected'), 'null') <> 'null' as want) o
         where j.execution_id = $1 and j.field_results is not null
         group by 1 order by 1",
    )
    .bind(execution.id)
    .fetch_all(&db)
    .await?;
    let took = t.elapsed().as_secs_f64();
    println!("baseline: one SQL aggregate {took:>6.2} s (tp/fp/fn per field, no intervals)");
    for f in &parts.fields {
        let sql = counts.iter().find(|c| c.0 == f.field);
        let agrees = sql.is_some_and(|(_, tp, fp, fn_)| {
            (tp - f.tp).abs() < 1e-3 && (fp - f.fp).abs() < 1e-3 && (fn_ - f.fn_).abs() < 1e-3
        });
        anyhow::ensure!(
            agrees,
            "{}: metrics tp/fp/fn {}/{}/{} but SQL {:?}",
            f.field,
            f.tp,
            f.fp,
            f.fn_,
            sql
        );
        let interval = |i: Option<[f64; 2]>| {
            i.map(|[lo, hi]| format!("[{lo:.4}, {hi:.4}]"))
                .unwrap_or_default()
        };
        println!(
            "  {:<12} accuracy {:.4} {}  P {:.4}  R {:.4}  F1 {:.4} {}",
            f.field,
            f.accuracy,
            interval(f.accuracy_interval),
            f.precision,
            f.recall,
            f.f1,
            interval(f.f1_interval)
        );
    }
    println!(
        "  run accuracy interval {}",
        parts
            .accuracy_interval
            .map(|[lo, hi]| format!("[{lo:.4}, {hi:.4}]"))
            .unwrap_or_default()
    );

    // 3. Importing a JSON Lines file against COPY of the same values, into
    // a batch of the same rows without the long texts (an import reads its
    // batch's expected values into memory, and at a million rows × 4 KB
    // that would measure this machine's memory, not the import).
    let short_batch = batches::ingest_text(
        &db,
        &ctx,
        project.id,
        Default::default(),
        rows_csv(jobs, false),
    )
    .await
    .map_err(err)?;
    sqlx::query("analyze batch_rows").execute(&db).await?;
    let mut jsonl = String::with_capacity(jobs as usize * 80);
    let mut copy = String::with_capacity(jobs as usize * 90);
    for n in 1..=jobs {
        let values = serde_json::json!({
            "title": format!("Product {n}"),
            "price": format!("{}.{:02}", n % 500, n % 100),
            "sku": format!("SKU-{n}"),
        });
        jsonl.push_str(&format!(
            "{{\"row\":{n},\"title\":{},\"price\":{},\"sku\":{}}}\n",
            values["title"], values["price"], values["sku"]
        ));
        // COPY's text format: tab-separated, backslashes doubled.
        copy.push_str(&format!(
            "{n}\t{}\n",
            values.to_string().replace('\\', "\\\\")
        ));
    }
    let file_mb = jsonl.len() as f64 / 1e6;
    reset_peak();
    let base_kib = peak_rss_kib();
    let t = Instant::now();
    let imported = imports::import(
        &db,
        ctx.actor(),
        short_batch.id,
        imports::ImportKey::Row,
        Some("bench"),
        jsonl.as_bytes(),
    )
    .await
    .map_err(err)?;
    let took = t.elapsed().as_secs_f64();
    println!(
        "import JSONL        {jobs} lines ({file_mb:.0} MB) in {took:>6.2} s  {:>8.0} rows/s  peak memory {:.0} MiB (+{:.0} MiB); run {} judged {} jobs",
        jobs as f64 / took,
        mib(peak_rss_kib()),
        mib(peak_rss_kib().saturating_sub(base_kib)),
        imported.id,
        imported.total
    );
    sqlx::query(
        "create table bench_copy (execution_id uuid not null default gen_random_uuid(),
                                  row_index int not null, extracted json)",
    )
    .execute(&db)
    .await?;
    let t = Instant::now();
    let mut conn = db.acquire().await?;
    let mut sink = conn
        .copy_in_raw("copy bench_copy (row_index, extracted) from stdin")
        .await?;
    sink.send(copy.as_bytes()).await?;
    let copied = sink.finish().await?;
    let took = t.elapsed().as_secs_f64();
    println!(
        "baseline: COPY      {copied} rows in {took:>6.2} s  {:>8.0} rows/s (the same values, no judging)",
        copied as f64 / took
    );
    Ok(())
}

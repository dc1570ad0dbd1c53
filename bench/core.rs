//! `mino bench`: prints the cost of the security primitives on this
//! machine, against a baseline measured in the same run, so the figures in
//! BENCHMARKS.md can be reproduced rather than trusted.

use std::time::{Duration, Instant};

use mino::server::auth::{password, secret};

fn stats(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = samples.iter().map(|d| ms(*d)).sum::<f64>() / samples.len() as f64;
    (ms(samples[0]), mean, ms(samples[samples.len() - 1]))
}

pub async fn run(rounds: usize) -> anyhow::Result<()> {
    println!(
        "Argon2id m={} KiB, t={}, p={}; {rounds} rounds each",
        password::MEMORY_KIB,
        password::ITERATIONS,
        password::PARALLELISM
    );

    // Baseline: the SHA-256 that authenticates every API-key request.
    let key = secret::new_api_key().0;
    let start = Instant::now();
    let n = 100_000;
    for _ in 0..n {
        std::hint::black_box(secret::sha256_hex(std::hint::black_box(&key)));
    }
    let sha_us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("baseline  sha256(api key)        {sha_us:>9.2} µs");

    let mut hashes = Vec::new();
    let mut stored = String::new();
    for _ in 0..rounds {
        let pw = password::Password::parse("correct horse battery".into(), "password")
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let t = Instant::now();
        stored = password::hash(pw).await?;
        hashes.push(t.elapsed());
    }
    let (min, mean, max) = stats(hashes);
    println!("argon2id  hash                   {mean:>9.2} ms  (min {min:.2}, max {max:.2})");

    let mut right = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        password::verify("correct horse battery".into(), Some(stored.clone())).await?;
        right.push(t.elapsed());
        let t = Instant::now();
        password::verify("correct horse battery".into(), None).await?;
        unknown.push(t.elapsed());
    }
    let (_, right_mean, _) = stats(right);
    let (_, unknown_mean, _) = stats(unknown);
    println!("argon2id  verify (known email)   {right_mean:>9.2} ms");
    println!("argon2id  verify (unknown email) {unknown_mean:>9.2} ms  (dummy hash; same work)");
    println!(
        "ratio     hash / sha256          {:>9.0}×",
        mean * 1000.0 / sha_us
    );
    Ok(())
}

/// `mino bench-ingest [rows]`: generates a CSV (URL, 3 inputs, 3 `gt_`
/// columns), loads it through the upload code path (parse, check, COPY into
/// `batch_rows`, one transaction), then loads the same file with
/// Postgres's own `COPY … (FORMAT csv)` into a plain table as the baseline,
/// and prints both rates, their ratio and this process's peak memory. Runs
/// in a scratch database that it drops afterwards.
pub async fn ingest(server: sqlx::postgres::PgConnectOptions, rows: u64) -> anyhow::Result<()> {
    use sqlx::{Connection, Executor};
    use std::io::Write;

    use mino::model::Role;
    use mino::server::auth::rbac::OrgCtx;
    use mino::server::service::batches::{self, Chunk, UploadMeta};

    let dir = std::env::temp_dir().join(format!("mino-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("sites.csv");
    let t = Instant::now();
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path)?);
        writeln!(w, "url,name,category,sku,gt_price,gt_title,gt_in_stock")?;
        for i in 0..rows {
            writeln!(
                w,
                "https://shop{}.example.com/products/{i},\"Product {i}, deluxe\",{},SKU-{i:08},{}.{:02},Product {i},{}",
                i % 97,
                ["lamps", "chairs", "desks", "rugs"][(i % 4) as usize],
                (i * 7) % 1000,
                i % 100,
                if i % 3 == 0 { "yes" } else { "no" },
            )?;
        }
    }
    let size = std::fs::metadata(&path)?.len();
    println!(
        "generated {rows} rows, {:.1} MB in {:.1} s",
        size as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let scratch = format!("mino_bench_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect_with(&server).await?;
    admin
        .execute(format!("create database {scratch}").as_str())
        .await?;
    let result = async {
        let db = mino::server::startup::connect(server.clone().database(&scratch)).await?;
        mino::server::startup::migrate(&db).await?;
        let user: uuid::Uuid = sqlx::query_scalar(
            "insert into users (email, name, password_hash) values ('bench@example.com', 'Bench', '-') returning id",
        )
        .fetch_one(&db)
        .await?;
        let org: uuid::Uuid = sqlx::query_scalar(
            "insert into organizations (name, slug) values ('Bench', 'bench') returning id",
        )
        .fetch_one(&db)
        .await?;
        let project: uuid::Uuid = sqlx::query_scalar(
            "insert into projects (org_id, name) values ($1, 'Bench') returning id",
        )
        .bind(org)
        .fetch_one(&db)
        .await?;
        let rss_before = crate::common::peak_rss_kib();

        // Mino: the upload path, fed 64 KiB pieces as a request body is.
        let ctx = OrgCtx::member(org, user, Role::Owner);
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let t = Instant::now();
        let task = tokio::spawn(batches::ingest(
            db.clone(),
            ctx,
            project,
            UploadMeta {
                name: Some("Bench".into()),
                ..Default::default()
            },
            rx,
        ));
        let mut file = tokio::fs::File::open(&path).await?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            use tokio::io::AsyncReadExt;
            let n = file.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            tx.send(Chunk::Data(axum::body::Bytes::copy_from_slice(&buf[..n])))
                .await
                .map_err(|_| anyhow::anyhow!("the ingest stopped early"))?;
        }
        tx.send(Chunk::End { name: None }).await.ok();
        let batch = task.await?.map_err(|e| anyhow::anyhow!("{e}"))?;
        let mino_secs = t.elapsed().as_secs_f64();
        let rss_peak = crate::common::peak_rss_kib();
        anyhow::ensure!(batch.row_count as u64 == rows, "stored {} rows", batch.row_count);

        // Baseline: Postgres parsing the same CSV itself.
        db.execute(
            "create table raw_copy (url text, name text, category text, sku text,
                                   gt_price text, gt_title text, gt_in_stock text)",
        )
        .await?;
        let t = Instant::now();
        let mut conn = db.acquire().await?;
        let mut copy = conn
            .copy_in_raw("copy raw_copy from stdin with (format csv, header true)")
            .await?;
        let mut file = tokio::fs::File::open(&path).await?;
        loop {
            use tokio::io::AsyncReadExt;
            let n = file.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            copy.send(&buf[..n]).await?;
        }
        let copied = copy.finish().await?;
        let raw_secs = t.elapsed().as_secs_f64();
        anyhow::ensure!(copied == rows, "raw COPY stored {copied} rows");
        drop(conn);

        // Where the upload's time goes: the rows exactly as the upload
        // sends them (its COPY text, made beforehand so no parsing
        // overlaps), loaded into batch_rows' layout with and without its
        // primary key, and into a partition of its own whose key is built
        // after the load (the layout a partition per batch would have).
        let mut reader = mino::server::ingest::CsvReader::new(Default::default(), 1);
        reader.feed(&std::fs::read(&path)?).map_err(|e| anyhow::anyhow!("{e}"))?;
        reader.finish().map_err(|e| anyhow::anyhow!("{e}"))?;
        let copy_text = reader.take_output();
        drop(reader);
        db.execute(
            "create table layout_pk (like batch_rows including defaults including indexes);
             create table layout_bare (like batch_rows including defaults);
             create table layout_parted (like batch_rows including defaults) partition by list (batch_seq);
             create table layout_part_1 partition of layout_parted for values in (1);",
        )
        .await?;
        let columns = "(batch_seq, row_index, line, site_url, inputs, ground_truth)";
        let mut layout = vec![];
        for (table, then) in [
            ("layout_pk", None),
            ("layout_bare", None),
            ("layout_part_1", Some("alter table layout_part_1 add primary key (batch_seq, row_index)")),
        ] {
            let mut conn = db.acquire().await?;
            let t = Instant::now();
            let mut copy = conn
                .copy_in_raw(&format!("copy {table} {columns} from stdin"))
                .await?;
            for piece in copy_text.chunks(1 << 20) {
                copy.send(piece).await?;
            }
            copy.finish().await?;
            if let Some(sql) = then {
                conn.execute(sql).await?;
            }
            layout.push(t.elapsed().as_secs_f64());
        }
        drop(copy_text);
        db.close().await;

        let mino_rate = rows as f64 / mino_secs;
        let raw_rate = rows as f64 / raw_secs;
        println!("mino upload path   {mino_secs:>7.2} s  {mino_rate:>10.0} rows/s  (parse, check, json rows, primary key, one transaction)");
        println!("raw COPY (csv)     {raw_secs:>7.2} s  {raw_rate:>10.0} rows/s  (plain text table, no index)");
        println!("ratio              {:>7.2}  (mino / raw COPY; target ≥ 0.50)", mino_rate / raw_rate);
        for (secs, what) in layout.iter().zip([
            "the upload's COPY text into batch_rows' layout (primary key), no parsing",
            "the same without the primary key",
            "the same into a partition, its primary key built after the load",
        ]) {
            println!(
                "layout             {secs:>7.2} s  {:>10.0} rows/s  ratio {:.2} ({what})",
                rows as f64 / secs,
                raw_secs / secs
            );
        }
        println!(
            "mino / layout      {:>7.2}  (the upload against the COPY of its own rows into its own table)",
            layout[0] / mino_secs
        );
        println!(
            "peak memory        {:>7.1} MB  (process peak RSS; {:.1} MB before the upload; target < 300 MB)",
            rss_peak as f64 / 1024.0,
            rss_before as f64 / 1024.0
        );
        anyhow::Ok(())
    }
    .await;
    admin
        .execute(format!("drop database if exists {scratch} with (force)").as_str())
        .await?;
    std::fs::remove_dir_all(&dir).ok();
    result
}

//! `mino eval` against a real server: exit codes 0, 1 and 2, its table,
//! and a JUnit report a real XML parser reads, listing fields and
//! thresholds.

#![cfg(feature = "ssr")]

use crate::common;

use common::{finished_demo_run, spawn_app, spawn_workers};
use mino::server::eval_cli::run;
use sqlx::PgPool;

fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

async fn eval(line: &str) -> (u8, String) {
    let mut out: Vec<u8> = Vec::new();
    let code = run(&args(line), &mut out).await;
    (code, String::from_utf8_lossy(&out).to_string())
}

#[sqlx::test]
async fn mino_eval_passes_fails_and_errs_with_a_junit_report(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, first) = finished_demo_run(&app, 17).await;
    let (batch, org): (String, String) =
        sqlx::query_as("select batch_id::text, org_id::text from executions where id = $1::uuid")
            .bind(&first)
            .fetch_one(&app.db)
            .await
            .unwrap();
    let key = app.key(&c, &org, &["read", "execute"]).await;
    let _workers = spawn_workers(&app);
    let junit = std::env::temp_dir().join(format!("mino-eval-{}.xml", uuid::Uuid::new_v4()));
    let base = format!(
        "--url {} --key {key} --batch {batch} --sample 17",
        app.url("")
    );

    // 17 demo rows: row 13 fails (404), row 17's expected price is wrong.
    let (code, out) = eval(&format!(
        "{base} --min-accuracy 0.5 --min-field currency=0.9 --max-regression 0.01 --against {first} --junit {}",
        junit.display()
    ))
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("PASS min-accuracy 0.5"), "{out}");
    // The regression is measured on the rows both runs judged (16: row 13
    // failed in both).
    assert!(out.contains("on the 16 rows both runs judged"), "{out}");
    assert!(out.contains("precision") && out.contains("price"), "{out}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("the JUnit report is XML");
    let cases: Vec<(String, bool)> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|n| {
            (
                n.attribute("name").unwrap().to_string(),
                n.children().any(|c| c.has_tag_name("failure")),
            )
        })
        .collect();
    let names: Vec<&str> = cases.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "field price",
        "field title",
        "min-accuracy 0.5",
        "min-field currency=0.9",
    ] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("max-regression 0.01 against")),
        "{names:?}"
    );
    assert!(cases.iter().all(|(_, failed)| !failed), "{cases:?}");

    // price passes 15 of 16: a 0.99 threshold fails, and says so.
    let (code, out) = eval(&format!(
        "{base} --min-field price=0.99 --json --junit {}",
        junit.display()
    ))
    .await;
    assert_eq!(code, 1, "{out}");
    let summary: serde_json::Value =
        serde_json::from_str(&out[out.find("{\n").unwrap()..]).unwrap();
    assert_eq!(summary["passed"], false);
    assert_eq!(summary["checks"][0]["name"], "min-field price=0.99");
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let failing: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase") && n.children().any(|c| c.has_tag_name("failure")))
        .map(|n| n.attribute("name").unwrap())
        .collect();
    assert_eq!(failing, vec!["field price", "min-field price=0.99"]);

    // An import judged against the thresholds: one row, a wrong price.
    let file = std::env::temp_dir().join(format!("mino-eval-{}.csv", uuid::Uuid::new_v4()));
    std::fs::write(&file, "row,price\n1,0.01\n").unwrap();
    let (code, out) = eval(&format!(
        "--url {} --key {key} --batch {batch} --import {} --min-field price=0.5",
        app.url(""),
        file.display()
    ))
    .await;
    assert_eq!(code, 1, "{out}");

    // --set runs the batch's evaluation set of that name: rows 13 (a 404)
    // and 17 (a wrong expected price), both failing.
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{batch}/evaluation-sets"),
            serde_json::json!({"name": "known-bad", "rows": [13, 17]}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let (code, out) = eval(&format!(
        "--url {} --key {key} --batch {batch} --set known-bad --min-accuracy 0.9 --json",
        app.url("")
    ))
    .await;
    assert_eq!(code, 1, "{out}");
    let rows: Vec<i32> = sqlx::query_scalar(
        "select row_index from jobs
         where execution_id = (select id from executions where batch_id = $1::uuid
                               order by created_at desc limit 1)
         order by row_index",
    )
    .bind(&batch)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(rows, [13, 17], "the set's rows ran, and only they");
    let (code, out) = eval(&format!(
        "--url {} --key {key} --batch {batch} --set nope",
        app.url("")
    ))
    .await;
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("no evaluation set named \"nope\" (it has known-bad)"),
        "{out}"
    );
    let (code, _) = eval(&format!("{base} --set known-bad")).await;
    assert_eq!(code, 2, "--set and --sample don't mix");

    // Errors: an unknown batch, a key without the right, bad arguments.
    let (code, out) = eval(&format!(
        "--url {} --key {key} --batch 00000000-0000-0000-0000-000000000000",
        app.url("")
    ))
    .await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("404"), "{out}");
    let read_only = app.key(&c, &org, &["read"]).await;
    let (code, out) = eval(&format!(
        "--url {} --key {read_only} --batch {batch}",
        app.url("")
    ))
    .await;
    assert_eq!(code, 2, "{out}");
    let (code, _) = eval("--key k --batch b").await;
    assert_eq!(code, 2);
    let _ = std::fs::remove_file(junit);
    let _ = std::fs::remove_file(file);
}

//! Exports of a real demo run: CSV and JSON parsed back equal the
//! database's rows, XLSX read back by openpyxl, a filtered export has
//! exactly the job list's rows, the history and re-downloads, and bad
//! requests name what is wrong.

#![cfg(feature = "ssr")]

use crate::common;

use common::{finished_demo_run, spawn_app, TestApp};
use serde_json::{json, Value};
use sqlx::PgPool;

/// POSTs an export and returns (status, headers, body bytes).
async fn export(
    app: &TestApp,
    c: &reqwest::Client,
    path: &str,
    body: Value,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let r = c.post(app.url(path)).json(&body).send().await.unwrap();
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, headers, r.bytes().await.unwrap().to_vec())
}

/// A minimal CSV reader for what the export writes (quoted fields with
/// doubled quotes, CRLF rows).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (vec![], vec![], String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(ch) = chars.next() {
        match (quoted, ch) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    rows
}

/// The database's view of every job: (row, url, verdict, price, expected
/// price, price comparison).
type DbRow = (
    i32,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<bool>,
);

async fn db_rows(db: &PgPool, execution: &str) -> Vec<[String; 6]> {
    let rows: Vec<DbRow> = sqlx::query_as(
        "select j.row_index, r.site_url, j.verdict, j.extracted->>'price',
                    r.ground_truth->>'price', (j.field_results->'price'->>'pass')::boolean
             from jobs j join executions e on e.id = j.execution_id
             join batches b on b.id = e.batch_id
             join batch_rows r on r.batch_seq = b.seq and r.row_index = j.row_index
             where j.execution_id = $1::uuid order by j.id",
    )
    .bind(execution)
    .fetch_all(db)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(row, url, verdict, price, gt, pass)| {
            [
                row.to_string(),
                url,
                verdict.unwrap_or_default(),
                price.unwrap_or_default(),
                gt.unwrap_or_default(),
                pass.map(|p| if p { "pass" } else { "fail" })
                    .unwrap_or_default()
                    .to_string(),
            ]
        })
        .collect()
}

const COLUMNS: [&str; 6] = ["row", "url", "verdict", "price", "gt_price", "price_match"];

#[sqlx::test]
async fn csv_and_json_exports_read_back_equal_to_the_database(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, id) = finished_demo_run(&app, 34).await;
    let want = db_rows(&app.db, &id).await;
    assert_eq!(want.len(), 34);

    // CSV with chosen columns.
    let (status, headers, body) = export(
        &app,
        &c,
        &format!("/api/v1/executions/{id}/export"),
        json!({"format": "csv", "columns": COLUMNS}),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"mino-export-"));
    let csv = parse_csv(std::str::from_utf8(&body).unwrap());
    assert_eq!(csv[0], COLUMNS);
    let got: Vec<[String; 6]> = csv[1..]
        .iter()
        .map(|r| r.clone().try_into().unwrap())
        .collect();
    assert_eq!(got, want);
    let csv_export = headers["x-mino-export-id"].to_str().unwrap().to_string();

    // JSON: the same rows, numbers as numbers and missing values as null.
    let (status, _, body) = export(
        &app,
        &c,
        &format!("/api/v1/executions/{id}/export"),
        json!({"format": "json", "columns": COLUMNS}),
    )
    .await;
    assert_eq!(status, 200);
    let items: Vec<Value> = serde_json::from_slice(&body).unwrap();
    assert_eq!(items.len(), 34);
    for (item, w) in items.iter().zip(&want) {
        assert_eq!(item["row"].as_i64().unwrap().to_string(), w[0]);
        for (i, col) in COLUMNS.iter().enumerate().skip(1) {
            // Prices (a number field) are numbers, the rest text.
            match &item[*col] {
                Value::Number(n) => {
                    assert_eq!(n.as_f64(), w[i].parse::<f64>().ok(), "{col} of {item}")
                }
                v => assert_eq!(v.as_str().unwrap_or_default(), w[i], "{col} of {item}"),
            }
        }
    }
    // Failed jobs extracted nothing: null, not "".
    let failed = items.iter().find(|i| i["row"] == 13).unwrap();
    assert!(failed["price"].is_null(), "{failed}");

    // The default columns name every field like an upload does.
    let (_, _, body) = export(
        &app,
        &c,
        &format!("/api/v1/executions/{id}/export"),
        json!({"format": "csv"}),
    )
    .await;
    let header = parse_csv(std::str::from_utf8(&body).unwrap())[0].clone();
    for col in [
        "row",
        "url",
        "verdict",
        "accuracy",
        "price",
        "gt_price",
        "price_match",
        "error",
    ] {
        assert!(header.contains(&col.to_string()), "{col} in {header:?}");
    }

    // The history lists them, newest first, with who and how many rows;
    // the kept file downloads again byte for byte.
    let batch: String =
        sqlx::query_scalar("select batch_id::text from executions where id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    let h = app
        .get(&c, &format!("/api/v1/batches/{batch}/exports"))
        .await;
    assert_eq!(h.status, 200, "{:?}", h.body);
    let items = h.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[2]["id"], csv_export.as_str());
    assert_eq!(items[2]["format"], "csv");
    assert_eq!(items[2]["row_count"], 34);
    assert_eq!(items[2]["state"], "ready");
    assert_eq!(items[2]["created_by"], "Owen");
    assert_eq!(items[2]["columns"], json!(COLUMNS));
    let again = c
        .get(app.url(&format!("/api/v1/exports/{csv_export}/download")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let again = again.bytes().await.unwrap();
    let first = parse_csv(std::str::from_utf8(&again).unwrap());
    assert_eq!(first, csv);

    // Another organization sees none of it.
    let (other, _) = app.user("eve@example.com", "Eve").await;
    app.org(&other, "Elsewhere").await;
    for path in [
        format!("/api/v1/exports/{csv_export}"),
        format!("/api/v1/exports/{csv_export}/download"),
        format!("/api/v1/batches/{batch}/exports"),
    ] {
        assert_eq!(app.get(&other, &path).await.status, 404, "{path}");
    }
    let (status, _, _) = export(
        &app,
        &other,
        &format!("/api/v1/executions/{id}/export"),
        json!({"format": "csv"}),
    )
    .await;
    assert_eq!(status, 404);
}

#[sqlx::test]
async fn a_filtered_export_has_exactly_the_listed_jobs(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, id) = finished_demo_run(&app, 34).await;
    for (query, filters) in [
        ("evaluation=partial", json!({"evaluation": "partial"})),
        ("status=failed", json!({"status": "failed"})),
        ("accuracy_max=0.8", json!({"accuracy_max": 0.8})),
        ("q=products/2", json!({"q": "products/2"})),
        ("field=price", json!({"field": "price"})),
        // Quotes and backslashes are values, not SQL.
        ("q=O%27Br%5C%25", json!({"q": "O'Br\\%"})),
    ] {
        let listed: Vec<i64> = app
            .get(
                &c,
                &format!("/api/v1/executions/{id}/jobs?{query}&limit=200"),
            )
            .await
            .body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["row_index"].as_i64().unwrap())
            .collect();
        let (status, headers, body) = export(
            &app,
            &c,
            &format!("/api/v1/executions/{id}/export"),
            json!({"format": "csv", "columns": ["row"], "filters": filters}),
        )
        .await;
        assert_eq!(status, 200, "{query}: {}", String::from_utf8_lossy(&body));
        let rows: Vec<i64> = parse_csv(std::str::from_utf8(&body).unwrap())[1..]
            .iter()
            .map(|r| r[0].parse().unwrap())
            .collect();
        assert_eq!(rows, listed, "{query}");
        assert_eq!(
            headers["x-mino-export-rows"].to_str().unwrap(),
            listed.len().to_string()
        );
    }
}

#[sqlx::test]
async fn xlsx_exports_open_in_a_real_reader(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, id) = finished_demo_run(&app, 34).await;
    let want = db_rows(&app.db, &id).await;
    let (status, headers, body) = export(
        &app,
        &c,
        &format!("/api/v1/executions/{id}/export"),
        json!({"format": "xlsx", "columns": COLUMNS}),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        headers["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let path = std::env::temp_dir().join(format!("mino-export-test-{}.xlsx", uuid::Uuid::new_v4()));
    std::fs::write(&path, &body).unwrap();
    // openpyxl reads it back: sheet names, header, every value (numbers
    // as numbers), the frozen header row, the colours of pass and fail,
    // the Summary's title and its percentage format.
    let script = r#"
import json, sys, openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
ws = wb["Results"]
rows = [[("" if v is None else v) for v in r] for r in ws.iter_rows(values_only=True)]
fills = {}
for r in ws.iter_rows(min_row=2):
    c = r[5]
    if c.value:
        fills[c.value] = c.fill.fgColor.rgb
sm = wb["Summary"]
summary = [[v for v in r] for r in sm.iter_rows(values_only=True)]
accuracy = [r for r in sm.iter_rows() if r[0].value == "Run accuracy"][0][1]
print(json.dumps({"sheets": wb.sheetnames, "rows": rows, "freeze": ws.freeze_panes,
                  "fills": fills, "summary": summary, "width": ws.column_dimensions["B"].width,
                  "title": sm["A1"].value, "accuracy": accuracy.value,
                  "accuracy_format": accuracy.number_format}, default=str))
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .expect("python3 runs (with openpyxl: scripts/setup.sh --browser installs it)");
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "openpyxl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(read["sheets"], json!(["Results", "Summary"]));
    assert_eq!(read["freeze"], "A2");
    let rows = read["rows"].as_array().unwrap();
    assert_eq!(rows[0], json!(COLUMNS));
    // Row numbers and prices (a number field) are numbers; the rest text.
    let mut got: Vec<[String; 6]> = vec![];
    for (r, want_row) in rows[1..].iter().zip(&want) {
        let cells = r.as_array().unwrap();
        for i in [0, 3, 4] {
            if !want_row[i].is_empty() {
                let n = cells[i]
                    .as_f64()
                    .unwrap_or_else(|| panic!("{} is no number: {r}", COLUMNS[i]));
                assert_eq!(n, want_row[i].parse::<f64>().unwrap(), "{r}");
            }
        }
        got.push(std::array::from_fn(|i| match &cells[i] {
            Value::String(s) => s.clone(),
            _ => want_row[i].clone(),
        }));
    }
    assert_eq!(got, want);
    // Green for pass, red for fail.
    assert_eq!(read["fills"]["pass"], "FFC6EFCE", "{}", read["fills"]);
    assert_eq!(read["fills"]["fail"], "FFFFC7CE");
    // URLs are wide: the column was fitted to them.
    assert!(read["width"].as_f64().unwrap() > 30.0, "{}", read["width"]);
    let summary = read["summary"].to_string();
    assert!(
        summary.contains("price") && summary.contains("Rows exported"),
        "{summary}"
    );
    // Titled with project, batch and run (mode, version, date), not an id.
    let title = read["title"].as_str().unwrap();
    assert!(
        title.starts_with("Demo shop · 200 demo products · Test run v1 · 20"),
        "{title}"
    );
    assert!(
        read["accuracy"]
            .as_f64()
            .is_some_and(|a| (0.0..=1.0).contains(&a)),
        "{}",
        read["accuracy"]
    );
    assert_eq!(read["accuracy_format"], "0.0%");
}

#[sqlx::test]
async fn exports_refuse_what_they_cannot_do_and_say_why(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, id) = finished_demo_run(&app, 5).await;
    let bad = |body: Value| {
        let (app, c, id) = (&app, &c, id.clone());
        async move {
            app.post(c, &format!("/api/v1/executions/{id}/export"), body)
                .await
        }
    };
    let r = bad(json!({"format": "pdf"})).await;
    assert_eq!(r.status, 400);
    assert!(r.field("format").unwrap().contains("csv, json or xlsx"));
    let r = bad(json!({"format": "csv", "columns": ["row", "colour"]})).await;
    assert!(
        r.field("columns[1]").unwrap().contains("\"colour\""),
        "{:?}",
        r.body
    );
    let r = bad(json!({"format": "csv", "columns": ["row", "row"]})).await;
    assert!(r.field("columns[1]").unwrap().contains("twice"));
    let r = bad(json!({"format": "csv", "filters": {"evaluation": "great"}})).await;
    assert!(r.field("filters.evaluation").is_some(), "{:?}", r.body);
    let r = bad(json!({"format": "csv", "sheet": "x"})).await;
    assert_eq!(r.status, 400);
    // A batch's latest run exports the same way; a batch without runs says so.
    let batch: String =
        sqlx::query_scalar("select batch_id::text from executions where id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    let (status, headers, _) = export(
        &app,
        &c,
        &format!("/api/v1/batches/{batch}/export"),
        json!({"format": "json"}),
    )
    .await;
    assert_eq!(status, 200);
    let e = app
        .get(
            &c,
            &format!(
                "/api/v1/exports/{}",
                headers["x-mino-export-id"].to_str().unwrap()
            ),
        )
        .await;
    assert_eq!(e.body["execution_id"], id.as_str());
    let org: String = sqlx::query_scalar("select org_id::text from executions where id = $1::uuid")
        .bind(&id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    let project = app.project(&c, &org, "Empty").await;
    let up = app
        .upload(&c, &project, "url\nhttps://example.com/\n", "")
        .await;
    let empty = up.body["id"].as_str().unwrap();
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{empty}/export"),
            json!({"format": "csv"}),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (409, "CONFLICT"),
        "{:?}",
        r.body
    );
}

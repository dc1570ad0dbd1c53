//! Fetching a page for the http agent: timeouts, a redirect limit, a body
//! size limit, gzip/brotli, and no requests to private addresses unless
//! allowed — checked on every hop, at connection time for names (so a name
//! that re-resolves to an internal address is caught) and up front for
//! address literals. Failures are classified as transient (worth retrying)
//! or permanent, and a 429's `Retry-After` is kept.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{header, StatusCode};

#[derive(Debug, Clone)]
pub struct FetchPolicy {
    /// Every private and loopback address may be fetched
    /// (`MINO_ALLOW_PRIVATE_TARGETS=1`).
    pub allow_private: bool,
    /// The built-in demo shop, reachable even when private addresses are
    /// not: its host and port, and only paths under `/demo`.
    pub demo_origin: Option<DemoOrigin>,
    pub connect_timeout: Duration,
    /// For the whole fetch, redirects and body included.
    pub timeout: Duration,
    pub max_redirects: usize,
    pub max_bytes: usize,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        FetchPolicy {
            allow_private: false,
            demo_origin: None,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            max_redirects: 5,
            max_bytes: 5 * 1024 * 1024,
        }
    }
}

/// Where this Mino serves its demo shop: the host and port of its public
/// address. The one private target allowed by default, so the demo works on
/// a laptop without opening every internal address to agents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOrigin {
    pub host: String,
    pub port: u16,
}

impl DemoOrigin {
    /// The demo shop of the Mino reached at `public_url`.
    pub fn of(public_url: &str) -> Option<DemoOrigin> {
        let url = reqwest::Url::parse(public_url).ok()?;
        Some(DemoOrigin {
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port_or_known_default()?,
        })
    }

    fn serves(&self, url: &reqwest::Url) -> bool {
        url.host_str()
            .is_some_and(|h| h.eq_ignore_ascii_case(&self.host))
            && url.port_or_known_default() == Some(self.port)
            && (url.path() == "/demo" || url.path().starts_with("/demo/"))
    }
}

impl FetchPolicy {
    /// Whether `url` may be fetched although it is private: everything with
    /// `allow_private`, else only the demo shop.
    pub fn private_allowed(&self, url: &reqwest::Url) -> bool {
        self.allow_private || self.demo_origin.as_ref().is_some_and(|d| d.serves(url))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Transient,
    Permanent,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FetchError {
    pub class: ErrorClass,
    /// timeout, connection, dns, http_429, http_5xx, http_4xx, too_large,
    /// private_target, bad_url, too_many_redirects, unreadable; agents add
    /// their own (see `agents::remote`).
    pub kind: &'static str,
    pub message: String,
    /// For 429: how long the site asked us to wait (at least 5 s).
    pub retry_after: Option<Duration>,
    /// What model calls of the failed attempt cost (the llm extractor's
    /// tokens are paid for even when its answer is not used).
    pub usage: Option<Box<crate::server::agents::extract::llm::Usage>>,
}

impl FetchError {
    pub fn permanent(kind: &'static str, message: impl Into<String>) -> Self {
        FetchError {
            class: ErrorClass::Permanent,
            kind,
            message: message.into(),
            retry_after: None,
            usage: None,
        }
    }
    pub fn transient(kind: &'static str, message: impl Into<String>) -> Self {
        FetchError {
            class: ErrorClass::Transient,
            kind,
            message: message.into(),
            retry_after: None,
            usage: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Fetched {
    pub url: String,
    pub status: u16,
    pub body: String,
    pub hops: Vec<String>,
    pub elapsed: Duration,
}

/// Loopback, private, link-local (cloud metadata), unique-local,
/// unspecified, broadcast, documentation and shared (CGNAT) addresses.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || o[0] == 0
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_private(IpAddr::V4(v4)))
        }
    }
}

const PRIVATE_MESSAGE: &str = "refusing a private or internal address";

/// Resolves names with the system resolver and drops private addresses,
/// failing when none is left. The demo shop's host name (e.g. `localhost`
/// in its public address) resolves as it is: [`check_target`] has already
/// refused every other port and path on it.
struct PublicOnly {
    demo_host: Option<String>,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        let demo = self
            .demo_host
            .as_deref()
            .is_some_and(|d| d.eq_ignore_ascii_case(&host));
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if demo {
                return Ok(Box::new(addrs.into_iter()) as Addrs);
            }
            let public: Vec<SocketAddr> = addrs
                .iter()
                .copied()
                .filter(|a| !is_private(a.ip()))
                .collect();
            if public.is_empty() && !addrs.is_empty() {
                return Err(format!("{host}: {PRIVATE_MESSAGE}").into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// A client for agents under `policy` (redirects are followed by
/// [`fetch`], hop by hop).
pub fn client(policy: &FetchPolicy) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(policy.connect_timeout)
        .user_agent(concat!(
            "Mino/",
            env!("CARGO_PKG_VERSION"),
            " (+extraction agent)"
        ))
        .gzip(true)
        .brotli(true);
    if !policy.allow_private {
        b = b.dns_resolver(Arc::new(PublicOnly {
            demo_host: policy.demo_origin.as_ref().map(|d| d.host.clone()),
        }));
    }
    b.build()
        .expect("a client with these settings always builds")
}

/// Seconds or an HTTP date; never less than 5 s.
pub fn parse_retry_after(value: Option<&str>) -> Duration {
    let min = Duration::from_secs(5);
    let parsed = value.and_then(|v| {
        v.trim()
            .parse::<u64>()
            .ok()
            .map(Duration::from_secs)
            .or_else(|| {
                chrono::DateTime::parse_from_rfc2822(v.trim())
                    .ok()
                    .map(|t| {
                        (t.with_timezone(&chrono::Utc) - chrono::Utc::now())
                            .to_std()
                            .unwrap_or_default()
                    })
            })
    });
    parsed.unwrap_or(min).max(min)
}

/// How long to wait before retry `n` (0-based): full jitter over
/// `min(cap, base · 2^n)`.
pub fn backoff(n: u32, base: Duration, cap: Duration) -> Duration {
    let ceiling = base.saturating_mul(2u32.saturating_pow(n.min(20))).min(cap);
    let ms = ceiling.as_millis() as u64;
    Duration::from_millis(if ms == 0 {
        0
    } else {
        rand::thread_rng().gen_range(0..=ms)
    })
}

pub(crate) fn classify(e: &reqwest::Error) -> FetchError {
    let text = format!("{e:#}");
    let mut source: Option<&dyn std::error::Error> = Some(e);
    let mut chain = String::new();
    while let Some(s) = source {
        chain.push_str(&s.to_string());
        chain.push(' ');
        source = s.source();
    }
    if chain.contains(PRIVATE_MESSAGE) {
        return FetchError::permanent("private_target", "The address resolves to a private or internal network; set MINO_ALLOW_PRIVATE_TARGETS=1 to allow it.");
    }
    if e.is_timeout() {
        return FetchError::transient("timeout", "The site did not answer in time.");
    }
    if chain.contains("dns error") || chain.contains("failed to lookup address") {
        return FetchError::transient("dns", format!("The name could not be resolved: {text}"));
    }
    if e.is_connect() || e.is_request() || e.is_body() {
        return FetchError::transient("connection", format!("The connection failed: {text}"));
    }
    FetchError::transient("connection", text)
}

pub(crate) fn check_target(url: &reqwest::Url, policy: &FetchPolicy) -> Result<(), FetchError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::permanent(
            "bad_url",
            format!("Only http and https addresses can be fetched, not {url}."),
        ));
    }
    if policy.private_allowed(url) {
        return Ok(());
    }
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(url::Host::Domain(d))
            if d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost") =>
        {
            Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
        }
        _ => None,
    };
    match literal {
        Some(ip) if is_private(ip) => Err(FetchError::permanent(
            "private_target",
            format!("{url} is a private or internal address: of those, agents may fetch only this Mino's demo shop unless MINO_ALLOW_PRIVATE_TARGETS=1 is set."),
        )),
        _ => Ok(()),
    }
}

/// Fetches `url`, following up to `policy.max_redirects` redirects.
pub async fn fetch(
    client: &reqwest::Client,
    url: &str,
    policy: &FetchPolicy,
) -> Result<Fetched, FetchError> {
    let started = Instant::now();
    match tokio::time::timeout(policy.timeout, fetch_inner(client, url, policy, started)).await {
        Ok(r) => r,
        Err(_) => Err(FetchError::transient(
            "timeout",
            format!("No complete answer within {} s.", policy.timeout.as_secs()),
        )),
    }
}

async fn fetch_inner(
    client: &reqwest::Client,
    url: &str,
    policy: &FetchPolicy,
    started: Instant,
) -> Result<Fetched, FetchError> {
    let mut current = reqwest::Url::parse(url).map_err(|e| {
        FetchError::permanent("bad_url", format!("{url} is not a valid address: {e}"))
    })?;
    let mut hops = Vec::new();
    loop {
        check_target(&current, policy)?;
        let res = client
            .get(current.clone())
            .send()
            .await
            .map_err(|e| classify(&e))?;
        let status = res.status();
        if status.is_redirection() {
            let Some(location) = res
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
            else {
                return Err(FetchError::permanent(
                    "http_3xx",
                    format!("{status} without a Location."),
                ));
            };
            if hops.len() >= policy.max_redirects {
                return Err(FetchError::permanent(
                    "too_many_redirects",
                    format!("More than {} redirects.", policy.max_redirects),
                ));
            }
            let next = current.join(location).map_err(|_| {
                FetchError::permanent(
                    "bad_url",
                    format!("The redirect to {location:?} is not a valid address."),
                )
            })?;
            hops.push(current.to_string());
            current = next;
            continue;
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            let wait = parse_retry_after(
                res.headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()),
            );
            let mut e = FetchError::transient(
                "http_429",
                format!(
                    "The site is rate-limiting (429); it asked to wait {} s.",
                    wait.as_secs()
                ),
            );
            e.retry_after = Some(wait);
            return Err(e);
        }
        if status.is_server_error() {
            return Err(FetchError::transient(
                "http_5xx",
                format!("The site failed with {status}."),
            ));
        }
        if status.is_client_error() {
            return Err(FetchError::permanent(
                "http_4xx",
                format!("The site answered {status}."),
            ));
        }
        let mut res = res;
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| classify(&e))? {
            body.extend_from_slice(&chunk);
            if body.len() > policy.max_bytes {
                return Err(FetchError::permanent(
                    "too_large",
                    format!(
                        "The page is larger than {} MB.",
                        policy.max_bytes / 1024 / 1024
                    ),
                ));
            }
        }
        let body = String::from_utf8_lossy(&body).into_owned();
        return Ok(Fetched {
            url: current.to_string(),
            status: status.as_u16(),
            body,
            hops,
            elapsed: started.elapsed(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn retry_after_is_at_least_five_seconds() {
        assert_eq!(parse_retry_after(Some("2")), Duration::from_secs(5));
        assert_eq!(parse_retry_after(Some("30")), Duration::from_secs(30));
        assert_eq!(parse_retry_after(None), Duration::from_secs(5));
        assert_eq!(parse_retry_after(Some("soon")), Duration::from_secs(5));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(60)).to_rfc2822();
        assert!(parse_retry_after(Some(&later)) >= Duration::from_secs(55));
    }

    #[test]
    fn backoff_grows_and_is_capped_with_full_jitter() {
        let base = Duration::from_millis(500);
        let cap = Duration::from_secs(30);
        for n in 0..12 {
            let ceiling = base.saturating_mul(2u32.pow(n)).min(cap);
            for _ in 0..50 {
                assert!(backoff(n, base, cap) <= ceiling);
            }
        }
        // The mean grows with n until the cap.
        let mean = |n| {
            (0..400)
                .map(|_| backoff(n, base, cap).as_millis())
                .sum::<u128>()
                / 400
        };
        assert!(mean(0) < mean(3) && mean(3) < mean(6));
        assert!(mean(20) <= 30_000);
    }

    #[tokio::test]
    async fn names_that_resolve_to_private_addresses_are_refused() {
        let resolver = PublicOnly { demo_host: None };
        let resolved = resolver.resolve("localhost".parse().unwrap()).await;
        let err = resolved.err().expect("localhost is private");
        assert!(err.to_string().contains(PRIVATE_MESSAGE), "{err}");
        // The demo shop's own host name resolves.
        let resolver = PublicOnly {
            demo_host: Some("localhost".into()),
        };
        assert!(resolver.resolve("localhost".parse().unwrap()).await.is_ok());
    }

    #[test]
    fn only_the_demo_shop_is_private_and_allowed() {
        let policy = FetchPolicy {
            demo_origin: DemoOrigin::of("http://localhost:3000"),
            ..Default::default()
        };
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        assert!(check_target(&url("http://localhost:3000/demo/products/4"), &policy).is_ok());
        assert!(check_target(&url("http://LOCALHOST:3000/demo"), &policy).is_ok());
        for refused in [
            "http://localhost:3000/api/v1/openapi.json",
            "http://localhost:3000/demonstration",
            "http://localhost:3001/demo/products/4",
            "http://127.0.0.1:3000/demo/products/4",
        ] {
            let e = check_target(&url(refused), &policy).expect_err(refused);
            assert_eq!(e.kind, "private_target", "{refused}");
        }
    }

    #[tokio::test]
    async fn literal_private_addresses_are_refused_up_front() {
        let policy = FetchPolicy::default();
        let c = client(&policy);
        for url in [
            "http://127.0.0.1:9/",
            "http://localhost:9/x",
            "http://[::1]:9/",
            "http://169.254.169.254/latest/meta-data",
        ] {
            let e = fetch(&c, url, &policy).await.unwrap_err();
            assert_eq!(
                (e.kind, e.class),
                ("private_target", ErrorClass::Permanent),
                "{url}"
            );
        }
        let e = fetch(&c, "ftp://example.com/", &policy).await.unwrap_err();
        assert_eq!(e.kind, "bad_url");
    }
}

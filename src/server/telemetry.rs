//! Logging: human-readable by default, JSON lines with `MINO_LOG_FORMAT=json`.

use tracing_subscriber::EnvFilter;

pub fn init(json: bool) {
    // chromiumoxide logs, as errors, every DevTools event it cannot parse
    // (newer Chromiums add enum values, e.g. an address space "Loopback",
    // to network events it only relays): noise on every page, while the
    // browser source reports real browser failures itself.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(
            "info,sqlx=warn,tower_sessions=warn,chromiumoxide::conn=off,chromiumoxide::handler=off",
        )
    });
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // try_init: integration tests call this more than once per process.
    if json {
        let _ = builder.json().flatten_event(true).try_init();
    } else {
        let _ = builder.try_init();
    }
}

//! What is derived at ingest (docs/web-analytics.md); the deriving lives in `crate::web`.

use std::path::PathBuf;

use clap::{ArgAction, Args};

/// Settings of what is derived at ingest.
#[derive(Debug, Clone, Args)]
pub struct WebConfig {
    /// A MaxMind City or Country database (e.g. GeoLite2-City.mmdb) that fills
    /// `context.location`. Unset: no location is derived.
    #[arg(long, env = "PULSELINE_GEOIP_DB")]
    pub geoip_db: Option<PathBuf>,
    /// Store the client's IP address as `context.ip`. Off by default: the address is used
    /// for the location, then dropped, and a `context.ip` sent by an SDK is dropped too.
    #[arg(long, env = "PULSELINE_STORE_IP", default_value_t = false, action = ArgAction::Set)]
    pub store_ip: bool,
    /// Parsed User-Agents kept in memory (least recently used go first).
    #[arg(long, env = "PULSELINE_UA_CACHE_ENTRIES", default_value_t = 10_000)]
    pub ua_cache_entries: usize,
    /// Milliseconds a queued page view may wait before the background fold takes it into the
    /// Web page's visits and rollups, while fewer than a chunk's worth are queued (a chunk's
    /// worth, or a time zone rebuild, is folded at once). 0: at every 200 ms tick.
    #[arg(long, env = "PULSELINE_WEB_FOLD_DELAY_MS", default_value_t = 2_000)]
    pub fold_delay_ms: u64,
    /// Visits of one day at which a referrer, UTM source, UTM campaign, entry or exit page
    /// value gets pair rows for that day (docs/dashboard-web.md, "Heavy values"), and page
    /// views at which a page does once the day is over ("Page filters"): lower pairs more
    /// values (more rows to write), higher leaves a one-chip view more visits to read per
    /// day. At least 1.
    #[arg(long, env = "PULSELINE_WEB_PAIR_HEAVY_VISITS", default_value_t = 100,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub pair_heavy_visits: i64,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            geoip_db: None,
            store_ip: false,
            ua_cache_entries: 10_000,
            fold_delay_ms: 2_000,
            pair_heavy_visits: crate::store::visits::PAIR_HEAVY_VISITS,
        }
    }
}

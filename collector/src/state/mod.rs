//! What every handler shares.

pub mod dashboard;
pub mod guards;
pub mod query_budget;
pub mod snapshot;

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::KeyRateLimiter;
use crate::clock::Clock;
use crate::config::Limits;
use crate::ingest::IngestQueue;
use crate::store::Store;

#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub queue: IngestQueue,
    pub clock: Arc<dyn Clock>,
    pub limits: Arc<Limits>,
    pub metrics: PrometheusHandle,
    /// `None` when PULSELINE_RATE_LIMIT_EVENTS_PER_SEC is 0.
    pub rate_limiter: Option<Arc<KeyRateLimiter>>,
    /// The configured rate, for error messages.
    pub limits_rate_per_sec: u32,
    /// Notification delivery: the sender (test action) and the category cache.
    pub delivery: crate::alerting::delivery::DeliveryHandle,
    /// Dashboard settings and its login rate limiter.
    pub dashboard: Arc<dashboard::DashboardState>,
    /// Which reverse proxies say who the client is.
    pub proxies: Arc<crate::config::ProxyConfig>,
    /// Where `/metrics` is served and the token it needs.
    pub ops: Arc<crate::config::OpsConfig>,
    /// Persons whose new events are dropped at ingest.
    pub suppressions: crate::privacy::SuppressionCache,
    /// Today's salt of cookieless visitor ids.
    pub cookieless_salt: crate::cookieless::DailySalt,
    /// What ingest derives for web analytics (User-Agent, GeoIP, source).
    pub web: Arc<crate::web::WebAnalytics>,
}

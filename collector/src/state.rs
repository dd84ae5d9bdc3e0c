//! What every handler shares.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

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
}

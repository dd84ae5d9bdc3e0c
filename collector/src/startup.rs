//! Building and running the service.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use std::num::NonZeroU32;

use crate::alerting::categories::{self, CategoryCache};
use crate::alerting::delivery::sender::Sender;
use crate::alerting::delivery::{DeliveryHandle, DeliveryWorker, EventNotifications};
use crate::auth::KeyRateLimiter;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::ingest::spawn_writer;
use crate::maintenance;
use crate::projects::{ProjectKeys, create_project};
use crate::routes::router;
use crate::state::AppState;
use crate::store::Store;
use crate::telemetry::metrics_handle;

/// Name of the project created on first start.
pub const DEFAULT_PROJECT_NAME: &str = "Default project";

#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    port: u16,
    /// PULSELINE_OPS_LISTEN's listener and its port.
    ops_listener: Option<(TcpListener, u16)>,
    state: AppState,
    writer: JoinHandle<()>,
    maintenance: JoinHandle<()>,
    delivery: JoinHandle<()>,
    delivery_stop: tokio::sync::watch::Sender<bool>,
    category_refresh: JoinHandle<()>,
    suppression_refresh: JoinHandle<()>,
    rules: Option<JoinHandle<()>>,
    digest: Option<JoinHandle<()>>,
    bootstrap: Option<ProjectKeys>,
    bootstrap_admin: Option<crate::accounts::FirstAdmin>,
    stop: Arc<Notify>,
    grace: Duration,
    sdk_files: crate::routes::sdk::SdkFiles,
}

/// Stops a running [`Application`] as SIGTERM would.
#[derive(Debug, Clone)]
pub struct ShutdownHandle(Arc<Notify>);

impl ShutdownHandle {
    pub fn shutdown(&self) {
        self.0.notify_one();
    }
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let mut store = Store::open(&config.database_url, config.sqlite_synchronous)
            .await
            .with_context(|| format!("opening the database at {}", config.database_url))?;
        store.set_pair_heavy_visits(config.web.pair_heavy_visits);
        store.prepare_partitions(clock.now()).await?;
        if store.plan(&config.default_plan).await?.is_none() {
            let plans: Vec<String> = store
                .list_plans()
                .await?
                .into_iter()
                .map(|p| p.name)
                .collect();
            anyhow::bail!(
                "PULSELINE_DEFAULT_PLAN={} is not a plan; use one of {} or create it with \
                 `pulseline-collector plan set`",
                config.default_plan,
                plans.join(", ")
            );
        }
        let bootstrap = if store.count_projects().await? == 0 {
            let keys = create_project(
                &store,
                DEFAULT_PROJECT_NAME,
                &config.default_plan,
                clock.now(),
            )
            .await
            .with_context(|| {
                format!(
                    "creating the default project (PULSELINE_DEFAULT_PLAN={})",
                    config.default_plan
                )
            })?;
            Some(keys)
        } else {
            None
        };
        let bootstrap_admin = crate::accounts::bootstrap(&store, &config.dashboard, clock.now())
            .await
            .context("creating the first dashboard admin")?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {} (PULSELINE_LISTEN)", config.listen))?;
        let port = listener.local_addr()?.port();
        let ops_listener = match config.ops.ops_listen {
            Some(addr) => {
                let l = TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding {addr} (PULSELINE_OPS_LISTEN)"))?;
                let port = l.local_addr()?.port();
                Some((l, port))
            }
            None => None,
        };
        config.delivery.validate()?;
        let categories = CategoryCache::default();
        categories.reload(&store).await?;
        let notifications = EventNotifications {
            categories: categories.clone(),
            wake: Arc::new(Notify::new()),
            clock: Arc::clone(&clock),
            max_per_minute: config.delivery.category_max_per_minute,
        };
        let (queue, writer) = spawn_writer(
            store.clone(),
            config.limits.max_queued_events,
            notifications.clone(),
        );
        let delivery_config = Arc::new(config.delivery.clone());
        let sender = Arc::new(Sender::new(&delivery_config)?);
        let (delivery_stop, stopped) = tokio::sync::watch::channel(false);
        let delivery = DeliveryWorker {
            store: store.clone(),
            clock: Arc::clone(&clock),
            sender: Arc::clone(&sender),
            config: Arc::clone(&delivery_config),
            wake: Arc::clone(&notifications.wake),
            owner: format!("replica-{}", uuid::Uuid::now_v7()),
        }
        .spawn(stopped);
        let category_refresh = categories::spawn_refresh(store.clone(), categories);
        let suppressions = crate::privacy::SuppressionCache::default();
        suppressions.reload(&store).await?;
        let suppression_refresh =
            crate::privacy::spawn_refresh(store.clone(), suppressions.clone());
        let limiter_clock = crate::limiter::LimiterClock::new(Arc::clone(&clock));
        let rate_limiter = rate_limiter(&config, limiter_clock.clone())?;
        let maintenance = maintenance::spawn(
            store.clone(),
            Arc::clone(&clock),
            Duration::from_secs(config.maintenance_interval_secs),
            Duration::from_millis(config.web.fold_delay_ms),
        );
        let sdk_files = crate::routes::sdk::SdkFiles::load(config.sdk_dir.as_deref());
        match sdk_files.version() {
            Some(version) => tracing::info!(
                source = sdk_files.source(),
                version,
                "serving the browser SDK at /sdk/v1/"
            ),
            None => tracing::warn!(
                source = sdk_files.source(),
                "no browser SDK to serve: /sdk/v1/ answers 404 (see sdk-wasm/build.sh)"
            ),
        }
        let rules = (config.rules_interval_secs > 0).then(|| {
            crate::alerting::rules::spawn(
                store.clone(),
                Arc::clone(&clock),
                Duration::from_secs(config.rules_interval_secs),
                Some(Arc::clone(&notifications.wake)),
            )
        });
        let digest = (config.digest_interval_ms > 0).then(|| {
            crate::reports::digest::DigestScheduler {
                store: store.clone(),
                clock: Arc::clone(&clock),
                config: Arc::clone(&delivery_config),
                wake: Arc::clone(&notifications.wake),
                dashboard_url: config.dashboard.public_url.clone(),
                owner: format!("digest-{}", uuid::Uuid::now_v7()),
            }
            .spawn(Duration::from_millis(config.digest_interval_ms))
        });
        let state = AppState {
            store,
            queue,
            clock,
            limits: Arc::new(config.limits),
            metrics: metrics_handle(),
            rate_limiter,
            limits_rate_per_sec: config.rate_limit_events_per_sec,
            delivery: DeliveryHandle {
                sender,
                notifications,
                config: delivery_config,
            },
            dashboard: Arc::new(crate::state::dashboard::DashboardState::new(
                config.dashboard,
                config.default_plan,
                limiter_clock,
            )),
            proxies: Arc::new(config.proxy),
            ops: Arc::new(config.ops),
            suppressions,
            cookieless_salt: Default::default(),
            web: Arc::new(crate::web::WebAnalytics::new(&config.web)?),
        };
        Ok(Self {
            listener,
            port,
            ops_listener,
            state,
            writer,
            maintenance,
            delivery,
            delivery_stop,
            category_refresh,
            suppression_refresh,
            rules,
            digest,
            bootstrap,
            bootstrap_admin,
            stop: Arc::new(Notify::new()),
            grace: Duration::from_secs(config.shutdown_grace_secs),
            sdk_files,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The operations listener's port, when PULSELINE_OPS_LISTEN is set.
    pub fn ops_port(&self) -> Option<u16> {
        self.ops_listener.as_ref().map(|(_, port)| *port)
    }

    /// The default project's keys, when this start created it (an empty database).
    pub fn bootstrap_keys(&self) -> Option<ProjectKeys> {
        self.bootstrap.clone()
    }

    /// The first dashboard admin's login, when this start created it (no users yet).
    pub fn first_admin(&self) -> Option<crate::accounts::FirstAdmin> {
        self.bootstrap_admin.clone()
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(Arc::clone(&self.stop))
    }

    /// Serves until SIGTERM, SIGINT or [`ShutdownHandle::shutdown`]; then stops accepting,
    /// lets in-flight requests finish (up to the grace period) and commits what they queued.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Self {
            listener,
            ops_listener,
            state,
            writer,
            maintenance,
            delivery,
            delivery_stop,
            category_refresh,
            suppression_refresh,
            rules,
            digest,
            stop,
            grace,
            sdk_files,
            ..
        } = self;
        let store = state.store.clone();
        // Scrapes are short: the operations listener simply stops with the main one.
        let ops = ops_listener.map(|(listener, _)| {
            let app = crate::routes::ops::router(state.clone());
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!(error = %e, "operations listener failed");
                }
            })
        });
        let app = router(state).merge(crate::routes::sdk::router(sdk_files));
        let listener = listener.tap_io(|tcp| {
            // Without it, keep-alive clients stall ~40 ms per request on delayed ACKs.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        });
        let stopping = Arc::new(Notify::new());
        let signalled = Arc::clone(&stopping);
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            stop_requested(&stop).await;
            tracing::info!("shutting down: finishing in-flight requests");
            signalled.notify_one();
        });
        let deadline = async {
            stopping.notified().await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            result = server => result.context("serving HTTP")?,
            () = deadline => tracing::warn!(?grace, "grace period over; dropping open connections"),
        }
        maintenance.abort();
        if let Some(ops) = ops {
            ops.abort();
        }
        if let Some(rules) = rules {
            rules.abort();
        }
        if let Some(digest) = digest {
            digest.abort();
        }
        // Every request handle is gone now, so the writer drains its queue and stops.
        if let Err(e) = writer.await {
            tracing::error!(error = %e, "ingest writer failed");
        }
        // Deliveries in flight finish (within the grace period); pending ones stay in the
        // outbox for the next start or another replica.
        category_refresh.abort();
        suppression_refresh.abort();
        let _ = delivery_stop.send(true);
        let delivery_abort = delivery.abort_handle();
        if tokio::time::timeout(grace, delivery).await.is_err() {
            tracing::warn!(
                ?grace,
                "deliveries still in flight after the grace period; their leases will expire"
            );
            delivery_abort.abort();
        }
        store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The per-write-key limiter, if a rate is configured. The burst must fit a whole batch.
fn rate_limiter(
    config: &Config,
    clock: crate::limiter::LimiterClock,
) -> anyhow::Result<Option<Arc<KeyRateLimiter>>> {
    let Some(rate) = NonZeroU32::new(config.rate_limit_events_per_sec) else {
        return Ok(None);
    };
    let max_batch = u32::try_from(config.limits.max_batch_messages).unwrap_or(u32::MAX);
    let burst = match config.rate_limit_burst {
        // Twice the rate, but never below a full batch: a rate set alone must always start.
        0 => rate
            .saturating_mul(NonZeroU32::MIN.saturating_add(1))
            .max(NonZeroU32::new(max_batch).unwrap_or(NonZeroU32::MIN)),
        b => NonZeroU32::new(b).unwrap_or(rate),
    };
    if burst.get() < max_batch {
        anyhow::bail!(
            "PULSELINE_RATE_LIMIT_BURST ({burst}) is below PULSELINE_MAX_BATCH_MESSAGES \
             ({max_batch}): a full batch could never be admitted; raise the burst"
        );
    }
    Ok(Some(Arc::new(KeyRateLimiter::new(
        "ingest",
        governor::Quota::per_second(rate).allow_burst(burst),
        clock,
    ))))
}

async fn stop_requested(stop: &Notify) {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
        () = stop.notified() => {},
    }
}

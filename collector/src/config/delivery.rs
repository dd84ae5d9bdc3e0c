//! Delivery settings. Each has a flag, an environment variable and a documented default (see
//! the README section "Alerting: categories, channels and delivery").

use clap::{ArgAction, Args};

#[derive(Debug, Clone, Args)]
pub struct DeliveryConfig {
    /// Allow webhooks to private, loopback and link-local addresses (self-hosting, tests).
    /// Checked on every send against the addresses the name resolves to at that moment.
    #[arg(long, env = "PULSELINE_ALLOW_PRIVATE_WEBHOOKS", default_value_t = false, action = ArgAction::Set)]
    pub allow_private_webhooks: bool,
    /// How long a replica holds a claimed delivery. If it dies, another replica delivers after
    /// this. Must exceed the request timeout by more than a second.
    #[arg(
        long = "delivery-lease-ms",
        env = "PULSELINE_DELIVERY_LEASE_MS",
        default_value_t = 60_000
    )]
    pub lease_ms: u64,
    /// Timeout of one outbound request (connect + response).
    #[arg(
        long = "delivery-timeout-ms",
        env = "PULSELINE_DELIVERY_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub timeout_ms: u64,
    /// Attempts before a delivery is given up (`dead`).
    #[arg(
        long = "delivery-max-attempts",
        env = "PULSELINE_DELIVERY_MAX_ATTEMPTS",
        default_value_t = 8
    )]
    pub max_attempts: u32,
    /// First retry delay; each further retry doubles it (with jitter), up to the maximum.
    #[arg(
        long = "delivery-retry-min-ms",
        env = "PULSELINE_DELIVERY_RETRY_MIN_MS",
        default_value_t = 1_000
    )]
    pub retry_min_ms: u64,
    /// Longest retry delay.
    #[arg(
        long = "delivery-retry-max-ms",
        env = "PULSELINE_DELIVERY_RETRY_MAX_MS",
        default_value_t = 3_600_000
    )]
    pub retry_max_ms: u64,
    /// How often each replica looks for due retries, expired leases and new alert events when
    /// nothing woke it.
    #[arg(
        long = "delivery-poll-ms",
        env = "PULSELINE_DELIVERY_POLL_MS",
        default_value_t = 1_000
    )]
    pub poll_ms: u64,
    /// Requests one replica may send to one webhook URL at once before pacing starts.
    #[arg(
        long = "delivery-pace-burst",
        env = "PULSELINE_DELIVERY_PACE_BURST",
        default_value_t = 5
    )]
    pub pace_burst: u32,
    /// After the burst, one request per this many milliseconds per webhook URL (default: 5 per
    /// 2 s, Discord's documented per-webhook rate).
    #[arg(
        long = "delivery-pace-period-ms",
        env = "PULSELINE_DELIVERY_PACE_PERIOD_MS",
        default_value_t = 400
    )]
    pub pace_period_ms: u64,
    /// Messages one event category sends one by one per minute (counted across replicas);
    /// the rest of that minute's matches become one "and N more" message after it ends.
    #[arg(
        long = "category-max-per-minute",
        env = "PULSELINE_CATEGORY_MAX_PER_MINUTE",
        default_value_t = 30
    )]
    pub category_max_per_minute: u32,
    /// SMTP server for email channels: smtp://user:pass@host:587?tls=required, smtps://…:465,
    /// or smtp://host:25 (no TLS, local relays only).
    #[arg(long, env = "PULSELINE_SMTP_URL")]
    pub smtp_url: Option<String>,
    /// Sender of notification emails, e.g. "Pulseline <alerts@example.com>".
    #[arg(long, env = "PULSELINE_SMTP_FROM")]
    pub smtp_from: Option<String>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            allow_private_webhooks: false,
            lease_ms: 60_000,
            timeout_ms: 10_000,
            max_attempts: 8,
            retry_min_ms: 1_000,
            retry_max_ms: 3_600_000,
            poll_ms: 1_000,
            pace_burst: 5,
            pace_period_ms: 400,
            category_max_per_minute: 30,
            smtp_url: None,
            smtp_from: None,
        }
    }
}

impl DeliveryConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.lease_ms <= self.timeout_ms + 1_000 {
            anyhow::bail!(
                "PULSELINE_DELIVERY_LEASE_MS ({}) must be more than a second longer than \
                 PULSELINE_DELIVERY_TIMEOUT_MS ({}): otherwise a slow request's lease expires and \
                 another replica sends it again",
                self.lease_ms,
                self.timeout_ms
            );
        }
        if self.category_max_per_minute == 0 {
            anyhow::bail!(
                "PULSELINE_CATEGORY_MAX_PER_MINUTE must be at least 1 (messages per category \
                 per minute before the rest are summed up in one message)"
            );
        }
        if self.max_attempts == 0 {
            anyhow::bail!("PULSELINE_DELIVERY_MAX_ATTEMPTS must be at least 1");
        }
        Ok(())
    }
}

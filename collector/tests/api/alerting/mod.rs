//! Alerting: delivery to Discord, Slack, webhooks and e-mail; rules; replicas; end to end.

mod delivery;
mod e2e;
mod replicas;
mod rules;

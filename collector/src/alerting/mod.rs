//! Alerting: event notifications, threshold and anomaly rules, and their delivery.

pub mod anomaly;
pub mod rules;

//! Alerting: event notifications, threshold and anomaly rules, and their delivery.

pub mod anomaly;
pub mod anomaly_cad;
pub mod categories;
pub mod delivery;
pub mod notification;
pub mod rules;

//! The Pulseline collector: Segment-compatible ingest with durable acknowledgement, storage,
//! and the read API. `main.rs` only parses the command line; everything lives here so tests
//! drive the same code.

pub mod accounts;
pub mod alerting;
pub mod analytics;
pub mod auth;
pub mod backup;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cookieless;
pub mod domain;
pub mod error;
pub mod inbound;
pub mod ingest;
pub mod limiter;
pub mod maintenance;
pub mod privacy;
pub mod projects;
pub mod proxy;
pub mod reports;
pub mod routes;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod web;

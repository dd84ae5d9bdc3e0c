//! The collector's integration tests: one binary, so the collector links once. Each module is
//! one area of the product, over real HTTP against a collector on port 0 with a fresh database
//! (SQLite, or PostgreSQL when `PULSELINE_TEST_POSTGRES_URL` is set).

mod alerting;
mod cli;
mod crash;
mod dashboard;
mod helpers;
mod inbound;
mod ingest;
mod limits;
mod persons;
mod plans;
mod read_api;
mod replicas;
mod sdk_routes;
mod web_analytics;

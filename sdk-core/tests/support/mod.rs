//! Shared test support: a fault-injecting HTTP server on 127.0.0.1. The round trips through the
//! real collector live in examples/rust-quickstart/tests, so this crate does not depend on it.
#![allow(dead_code, unreachable_pub)]

pub mod fault_server;

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

//! Pulseline quickstart: identify a user, track a few events, flush, and report.
//!
//! ```sh
//! PULSELINE_HOST=http://127.0.0.1:8080 PULSELINE_WRITE_KEY=plw_... cargo run -p rust-quickstart
//! ```
//!
//! Exits 0 when every event was acknowledged by the collector, 1 otherwise (wrong key,
//! collector down past the flush timeout, …), 2 on a usage error.

use std::{process::ExitCode, time::Duration};

use pulseline::{Client, FlushOutcome, Identify, Page, Track, User};
use serde::Serialize;
use serde_json::json;

/// Properties can be your own types: anything that serializes to a JSON object.
#[derive(Serialize)]
struct OrderCompleted {
    order_id: String,
    amount: f64,
    currency: &'static str,
}

fn main() -> ExitCode {
    let host = std::env::var("PULSELINE_HOST").unwrap_or_else(|_| "http://localhost:8080".into());
    let Ok(write_key) = std::env::var("PULSELINE_WRITE_KEY") else {
        eprintln!("set PULSELINE_WRITE_KEY to a project's write key");
        return ExitCode::from(2);
    };
    let client = match Client::builder(write_key)
        .host(&host)
        .on_error(|error| eprintln!("delivery problem: {error}"))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            eprintln!("cannot create the client: {error}");
            return ExitCode::from(2);
        }
    };

    let user = User::id("quickstart-user-1");
    let captured = [
        client.identify(
            Identify::new(user.clone())
                .traits(json!({ "email": "ada@example.com", "plan": "pro" })),
        ),
        client.page(
            Page::new(user.clone())
                .name("Pricing")
                .properties(json!({ "path": "/pricing" })),
        ),
        client.track(
            Track::new(user.clone(), "signup").properties(json!({ "plan": "pro", "seats": 3 })),
        ),
        client.track(
            Track::new(user, "order_completed").properties(OrderCompleted {
                order_id: "ord_1001".into(),
                amount: 49.0,
                currency: "EUR",
            }),
        ),
    ];
    for result in &captured {
        match result {
            Ok(id) => println!("captured {id}"),
            Err(error) => {
                eprintln!("capture refused: {error}");
                return ExitCode::FAILURE;
            }
        }
    }

    let outcome = client.flush(Duration::from_secs(10));
    let stats = client.stats();
    println!(
        "flush: {outcome:?}; sent {} of {} events to {host}",
        stats.sent, stats.captured
    );
    client.shutdown(Duration::from_secs(2));
    if outcome == FlushOutcome::Flushed
        && stats.dropped.total() == 0
        && stats.sent == stats.captured
    {
        ExitCode::SUCCESS
    } else {
        eprintln!("not every event was delivered: {stats:?}");
        ExitCode::FAILURE
    }
}

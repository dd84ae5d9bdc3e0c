//! Alert rules: a series (count or an aggregate of a numeric property per bucket), a condition
//! (threshold or anomaly), and a state machine that appends one alert_events row per change
//! worth telling someone about. Delivery sends those rows; nothing here sends anything.

pub mod detector;
pub mod evaluate;
pub mod explain;
pub mod history;
pub mod spec;
pub mod state;

pub use evaluate::{Evaluator, PassReport, latest_closed_bucket, run_once, spawn};
pub use spec::RuleSpec;

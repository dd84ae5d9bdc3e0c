//! Reports the collector sends on its own schedule: the weekly digest.

pub mod digest;

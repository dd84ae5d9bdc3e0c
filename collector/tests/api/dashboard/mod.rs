//! The dashboard: its HTTP API, the Web page, and its security and bounds.

mod api;
mod security;

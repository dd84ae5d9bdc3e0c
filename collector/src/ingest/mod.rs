//! Ingest: from request bytes to committed events.

mod decode;
mod writer;

use serde::Serialize;
use utoipa::ToSchema;

pub use decode::{DecodedBody, decode_body};
pub use writer::{CommitOutcome, IngestQueue, spawn_writer};

/// One message of a batch that was not stored, and why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Rejected {
    /// Position of the message in the batch, from 0.
    pub index: usize,
    /// The message's `messageId`, when it had a readable one.
    #[serde(rename = "messageId", skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// What is wrong with it, in words a developer can act on.
    pub error: String,
}

//! Storage of channels, categories and the delivery outbox, on both backends, one file per
//! noun. The SQL is written once (see `store::with_db!`).

mod alert_events;
mod categories;
mod channels;
mod outbox;

pub use alert_events::AlertEventRecord;
pub use categories::{CategoryInput, CategoryRecord};
pub use channels::{CHANNEL_DELETED, ChannelChanges, ChannelRecord};
pub use outbox::{AttemptRecord, DeliveryRecord, NewDelivery, NextState};
pub(crate) use outbox::{INSERT_DELIVERY, Outbox};

//! A message's `messageId`: what the collector deduplicates on, once per project.

use std::fmt;

use uuid::Uuid;

use crate::{Error, limits::MAX_MESSAGE_ID_CHARS};

/// A message's `messageId`, as sent on the wire.
///
/// The SDK stamps every message with a fresh UUIDv7 unless you give your own: any non-empty
/// string of at most [`MAX_MESSAGE_ID_CHARS`] characters (an order number, a database row id,
/// a UUID), as the collector and Segment accept. The collector stores each `messageId` once per
/// project, so reusing one on purpose makes a backfill idempotent. The string is sent exactly as
/// given; a [`Uuid`] becomes its lowercase hyphenated form. The length is checked at capture,
/// where an empty or longer id is an [`Error::InvalidMessage`] with field `messageId`.
///
/// ```
/// use pulseline::{MessageId, Track, Uuid};
///
/// let client = pulseline::testing::test_client();
/// let id = client.track(Track::new("user-42", "order_paid").message_id("order-1042"))?;
/// assert_eq!(id, "order-1042");
///
/// let uuid = Uuid::parse_str("0192F1A4-5B6C-7D8E-9F00-112233445566").unwrap();
/// assert_eq!(MessageId::from(uuid).as_str(), "0192f1a4-5b6c-7d8e-9f00-112233445566");
/// # Ok::<(), pulseline::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageId(String);

impl MessageId {
    /// A fresh UUIDv7: unique, and sorting in capture order.
    pub(crate) fn generate() -> Self {
        MessageId::from(Uuid::now_v7())
    }

    /// The id as it is sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks the id against what the collector accepts.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let invalid = |reason| Error::InvalidMessage {
            field: "messageId",
            reason,
        };
        if self.0.is_empty() {
            return Err(invalid("must not be empty (omit it to get a fresh UUIDv7)"));
        }
        // Counted in characters, as the collector counts them.
        if self.0.chars().nth(MAX_MESSAGE_ID_CHARS).is_some() {
            return Err(invalid(TOO_LONG));
        }
        Ok(())
    }
}

/// The reason for an over-long id; a test ties its figure to [`MAX_MESSAGE_ID_CHARS`].
const TOO_LONG: &str = "must be at most 200 characters";

impl From<Uuid> for MessageId {
    fn from(id: Uuid) -> Self {
        MessageId(
            id.hyphenated()
                .encode_lower(&mut Uuid::encode_buffer())
                .to_owned(),
        )
    }
}

impl From<String> for MessageId {
    fn from(id: String) -> Self {
        MessageId(id)
    }
}

impl From<&str> for MessageId {
    fn from(id: &str) -> Self {
        MessageId(id.to_owned())
    }
}

impl From<MessageId> for String {
    fn from(id: MessageId) -> Self {
        id.0
    }
}

impl AsRef<str> for MessageId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for MessageId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for MessageId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<Uuid> for MessageId {
    fn eq(&self, other: &Uuid) -> bool {
        let mut buf = Uuid::encode_buffer();
        self.0 == *other.hyphenated().encode_lower(&mut buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_too_long_reason_names_the_limit() {
        assert_eq!(
            TOO_LONG,
            format!("must be at most {MAX_MESSAGE_ID_CHARS} characters")
        );
    }

    #[test]
    fn ids_up_to_the_limit_in_characters_are_valid() {
        let at_limit = "é".repeat(MAX_MESSAGE_ID_CHARS);
        assert!(MessageId::from(at_limit.as_str()).validate().is_ok());
        let over = MessageId::from(format!("{at_limit}x"));
        assert!(matches!(
            over.validate(),
            Err(Error::InvalidMessage { field: "messageId", reason }) if reason == TOO_LONG
        ));
        assert!(MessageId::from("").validate().is_err());
        assert!(MessageId::from(" ").validate().is_ok());
        let uuid = Uuid::now_v7();
        assert_eq!(MessageId::from(uuid), uuid);
        assert_ne!(MessageId::from("x"), uuid);
    }
}

//! Batches: messages joined into one `POST /v1/batch` body, within the collector's limits.
//!
//! A batch keeps its messages as one buffer of comma-joined JSON plus the end offset of each,
//! so building the request body is concatenation, a 413 can split it in half without
//! re-serializing anything, and the disk buffer can store it as one record.

#[cfg(feature = "gzip")]
use std::io::Write;

#[cfg(feature = "gzip")]
use flate2::{Compression, write::GzEncoder};
use web_time::SystemTime;

use crate::{
    limits::{BODY_OVERHEAD_BYTES, MAX_BATCH_MESSAGES, MAX_REQUEST_BYTES},
    time::rfc3339_millis,
};

/// Identifies a batch within one client, in the order batches were sealed. Pieces of a split
/// batch keep their parent's id, so a flush waits for all of them.
pub(crate) type BatchId = u64;

/// Sealed messages ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Batch {
    pub(crate) id: BatchId,
    /// `m1,m2,…,mN`.
    pub(crate) joined: Vec<u8>,
    /// Exclusive end offset of each message in `joined`.
    pub(crate) ends: Vec<u32>,
}

impl Batch {
    #[cfg_attr(not(feature = "disk-buffer"), allow(dead_code))]
    pub(crate) fn from_parts(id: BatchId, joined: Vec<u8>, ends: Vec<u32>) -> Option<Self> {
        // Validates parts read back from disk: offsets increasing, in bounds, comma-separated.
        let mut start = 0usize;
        for (i, &end) in ends.iter().enumerate() {
            let end = end as usize;
            if end <= start || end > joined.len() {
                return None;
            }
            let is_last = i + 1 == ends.len();
            if is_last && end != joined.len() || !is_last && joined.get(end) != Some(&b',') {
                return None;
            }
            start = end + 1;
        }
        (!ends.is_empty()).then_some(Batch { id, joined, ends })
    }

    /// Number of messages.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// The `index`-th message's bytes.
    #[cfg(test)]
    pub(crate) fn message(&self, index: usize) -> &[u8] {
        let start = if index == 0 {
            0
        } else {
            self.ends[index - 1] as usize + 1
        };
        &self.joined[start..self.ends[index] as usize]
    }

    /// Splits into two halves by message count (after a 413). `None` for a single message.
    pub(crate) fn split(self) -> Option<(Batch, Batch)> {
        if self.len() < 2 {
            return None;
        }
        let mid = self.len() / 2;
        let cut = self.ends[mid - 1] as usize;
        let right_joined = self.joined[cut + 1..].to_vec();
        let offset = (cut + 1) as u32;
        let right_ends = self.ends[mid..].iter().map(|e| e - offset).collect();
        let mut left_joined = self.joined;
        left_joined.truncate(cut);
        let mut left_ends = self.ends;
        left_ends.truncate(mid);
        Some((
            Batch {
                id: self.id,
                joined: left_joined,
                ends: left_ends,
            },
            Batch {
                id: self.id,
                joined: right_joined,
                ends: right_ends,
            },
        ))
    }

    /// The request body: `{"batch":[…],"sentAt":"…"}`, gzip-compressed if asked (and the
    /// `gzip` feature is on).
    pub(crate) fn body(&self, sent_at: SystemTime, gzip: bool) -> Vec<u8> {
        let sent_at = rfc3339_millis(sent_at);
        let head: &[u8] = b"{\"batch\":[";
        let tail = format!("],\"sentAt\":\"{sent_at}\"}}");
        if !(gzip && cfg!(feature = "gzip")) {
            let mut body = Vec::with_capacity(head.len() + self.joined.len() + tail.len());
            body.extend_from_slice(head);
            body.extend_from_slice(&self.joined);
            body.extend_from_slice(tail.as_bytes());
            return body;
        }
        self.gzip_body(head, tail.as_bytes())
    }

    #[cfg(not(feature = "gzip"))]
    fn gzip_body(&self, _head: &[u8], _tail: &[u8]) -> Vec<u8> {
        unreachable!("body() only compresses with the gzip feature")
    }

    #[cfg(feature = "gzip")]
    fn gzip_body(&self, head: &[u8], tail: &[u8]) -> Vec<u8> {
        // Level 1: JSON compresses ~5-10x even at the fastest level, and CPU is the scarce
        // resource on the worker thread.
        let mut gz = GzEncoder::new(
            Vec::with_capacity(self.joined.len() / 4 + 64),
            Compression::fast(),
        );
        // Writing into a Vec cannot fail.
        let written = gz
            .write_all(head)
            .and_then(|()| gz.write_all(&self.joined))
            .and_then(|()| gz.write_all(tail));
        debug_assert!(written.is_ok());
        gz.finish().unwrap_or_default()
    }
}

/// Accumulates messages into a batch until the next one would break a limit.
#[derive(Debug)]
pub(crate) struct BatchBuilder {
    max_messages: usize,
    max_joined_bytes: usize,
    joined: Vec<u8>,
    ends: Vec<u32>,
}

impl BatchBuilder {
    /// `max_messages` and `max_body_bytes` are clamped to the collector's limits.
    pub(crate) fn new(max_messages: usize, max_body_bytes: usize) -> Self {
        let max_messages = max_messages.clamp(1, MAX_BATCH_MESSAGES);
        let max_body_bytes = max_body_bytes.min(MAX_REQUEST_BYTES);
        BatchBuilder {
            max_messages,
            max_joined_bytes: max_body_bytes.saturating_sub(BODY_OVERHEAD_BYTES),
            joined: Vec::new(),
            ends: Vec::new(),
        }
    }

    /// Whether `message_len` more bytes fit; an empty builder takes any single message
    /// (capture already enforced the per-message limit, which is far below the body limit).
    pub(crate) fn fits(&self, message_len: usize) -> bool {
        if self.ends.is_empty() {
            return true;
        }
        self.ends.len() < self.max_messages
            && self.joined.len() + 1 + message_len <= self.max_joined_bytes
    }

    /// Whether no further message could be added.
    pub(crate) fn is_full(&self) -> bool {
        self.ends.len() >= self.max_messages || self.joined.len() + 2 > self.max_joined_bytes
    }

    /// Appends a message; the caller checked [`fits`](Self::fits).
    pub(crate) fn push(&mut self, message: &[u8]) {
        debug_assert!(self.fits(message.len()));
        if !self.ends.is_empty() {
            self.joined.push(b',');
        }
        self.joined.extend_from_slice(message);
        self.ends.push(self.joined.len() as u32);
    }

    /// Seals the accumulated messages into a batch, leaving the builder empty.
    pub(crate) fn seal(&mut self, id: BatchId) -> Option<Batch> {
        if self.ends.is_empty() {
            return None;
        }
        let capacity = self
            .joined
            .len()
            .next_power_of_two()
            .min(self.max_joined_bytes);
        let joined = std::mem::replace(&mut self.joined, Vec::with_capacity(capacity));
        let ends = std::mem::take(&mut self.ends);
        Some(Batch { id, joined, ends })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::{io::Read, time::UNIX_EPOCH};

    fn msg(i: usize, pad: usize) -> Vec<u8> {
        format!("{{\"n\":{i},\"p\":\"{}\"}}", "x".repeat(pad)).into_bytes()
    }

    fn fill(builder: &mut BatchBuilder, messages: &[Vec<u8>]) -> Vec<Batch> {
        let mut batches = Vec::new();
        for m in messages {
            if !builder.fits(m.len()) {
                batches.extend(builder.seal(batches.len() as u64));
            }
            builder.push(m);
        }
        batches.extend(builder.seal(batches.len() as u64));
        batches
    }

    #[test]
    fn seals_at_the_message_count_limit() {
        let messages: Vec<_> = (0..2_501).map(|i| msg(i, 1)).collect();
        let batches = fill(&mut BatchBuilder::new(usize::MAX, usize::MAX), &messages);
        assert_eq!(
            batches.iter().map(Batch::len).collect::<Vec<_>>(),
            vec![MAX_BATCH_MESSAGES, 1]
        );
    }

    #[test]
    fn request_bodies_never_exceed_the_collector_byte_limit() {
        // ~30 KB messages: a 512 KiB body fits 16 of them with overhead, never 17.
        let messages: Vec<_> = (0..100).map(|i| msg(i, 30_000)).collect();
        let batches = fill(&mut BatchBuilder::new(usize::MAX, usize::MAX), &messages);
        assert!(batches.len() > 1);
        for b in &batches {
            let body = b.body(UNIX_EPOCH, false);
            assert!(body.len() <= MAX_REQUEST_BYTES, "{} bytes", body.len());
            // A full batch really was full: one more message would not have fit.
            if b.id as usize + 1 < batches.len() {
                assert!(body.len() + 30_000 > MAX_REQUEST_BYTES - BODY_OVERHEAD_BYTES);
            }
        }
        assert_eq!(batches.iter().map(Batch::len).sum::<usize>(), 100);
    }

    #[test]
    fn custom_limits_are_respected_and_clamped() {
        let messages: Vec<_> = (0..10).map(|i| msg(i, 10)).collect();
        let batches = fill(&mut BatchBuilder::new(3, usize::MAX), &messages);
        assert_eq!(
            batches.iter().map(Batch::len).collect::<Vec<_>>(),
            vec![3, 3, 3, 1]
        );
        let b = BatchBuilder::new(0, 10);
        assert_eq!(b.max_messages, 1);
    }

    #[cfg(feature = "gzip")]
    #[test]
    fn body_is_valid_json_with_messages_in_order_and_gzip_round_trips() {
        let messages: Vec<_> = (0..5).map(|i| msg(i, 3)).collect();
        let batch = fill(&mut BatchBuilder::new(100, usize::MAX), &messages).remove(0);
        let plain = batch.body(UNIX_EPOCH, false);
        let v: Value = serde_json::from_slice(&plain).unwrap();
        assert_eq!(v["sentAt"], "1970-01-01T00:00:00.000Z");
        let ns: Vec<_> = v["batch"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["n"].as_u64().unwrap())
            .collect();
        assert_eq!(ns, vec![0, 1, 2, 3, 4]);
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&batch.body(UNIX_EPOCH, true)[..])
            .read_to_end(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, plain);
    }

    #[test]
    fn split_halves_keep_every_message_once() {
        let messages: Vec<_> = (0..7).map(|i| msg(i, i)).collect();
        let batch = fill(&mut BatchBuilder::new(100, usize::MAX), &messages).remove(0);
        let (l, r) = batch.clone().split().unwrap();
        assert_eq!((l.len(), r.len()), (3, 4));
        let rejoined: Vec<&[u8]> = (0..3)
            .map(|i| l.message(i))
            .chain((0..4).map(|i| r.message(i)))
            .collect();
        let original: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        assert_eq!(rejoined, original);
        assert!(Batch::from_parts(0, r.joined.clone(), r.ends.clone()).is_some());
        let (single, _) = l.split().unwrap();
        assert!(single.split().is_none());
    }

    #[test]
    fn from_parts_rejects_inconsistent_offsets() {
        assert!(Batch::from_parts(0, b"{},{}".to_vec(), vec![2, 5]).is_some());
        assert!(Batch::from_parts(0, b"{},{}".to_vec(), vec![3, 5]).is_none());
        assert!(Batch::from_parts(0, b"{},{}".to_vec(), vec![2, 6]).is_none());
        assert!(Batch::from_parts(0, b"{}".to_vec(), vec![]).is_none());
    }
}

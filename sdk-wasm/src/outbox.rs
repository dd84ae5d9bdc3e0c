//! The offline buffer: request bodies kept in `localStorage` until the collector answers.
//!
//! Every batch is written here before it leaves (write-ahead, as the core's disk buffer does on
//! native targets) and removed once the collector's answer is final (stored, or refused for
//! good). A page closed during an outage, or one whose last batch left by `sendBeacon` (which
//! gives no answer), leaves its batches here; the next page load on the same origin sends them
//! again ([`Outbox::entries`]). Messages keep their `messageId`, so the collector stores each
//! one once even when a copy is sent twice.

use crate::storage;

/// Most bytes of request bodies the offline buffer keeps per write key (1 MiB; `localStorage`
/// typically allows 5 MB per origin, stored as UTF-16). When a batch would exceed it, that batch
/// is not kept: it is still sent, but a page closed before delivery loses it (newest dropped,
/// like the core's memory bound), and a warning is logged.
pub const OFFLINE_BUFFER_MAX_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    prefix: String,
    max_bytes: usize,
    /// False in cookieless mode: nothing is written to or read from the device.
    enabled: bool,
}

impl Outbox {
    pub(crate) fn new(write_key: &str, max_bytes: usize, enabled: bool) -> Self {
        Outbox {
            prefix: format!("pulseline:outbox:{write_key}:"),
            max_bytes,
            enabled,
        }
    }

    fn storage(&self) -> Option<web_sys::Storage> {
        self.enabled.then(storage::local).flatten()
    }

    /// Keeps `body` under `batch_key` (retries of one batch overwrite one entry). Returns the
    /// storage key, or `None` when there is no storage or the bound would be exceeded.
    pub(crate) fn put(&self, batch_key: u64, body: &str) -> Option<String> {
        let storage = self.storage()?;
        let key = format!("{}{batch_key:016x}", self.prefix);
        let used: usize = storage::keys_with_prefix(&storage, &self.prefix)
            .iter()
            .filter(|k| **k != key)
            .filter_map(|k| storage.get_item(k).ok().flatten())
            .map(|v| v.len())
            .sum();
        if used + body.len() > self.max_bytes {
            crate::error::warn(&format!(
                "pulseline: offline buffer full ({used} of {} bytes); this batch is sent but not \
                 kept for a replay",
                self.max_bytes
            ));
            return None;
        }
        storage.set_item(&key, body).ok()?;
        Some(key)
    }

    pub(crate) fn remove(&self, key: &str) {
        if let Some(storage) = self.storage() {
            let _ = storage.remove_item(key);
        }
    }

    /// Every kept body, as `(key, body)`.
    pub(crate) fn entries(&self) -> Vec<(String, String)> {
        let Some(storage) = self.storage() else {
            return Vec::new();
        };
        storage::keys_with_prefix(&storage, &self.prefix)
            .into_iter()
            .filter_map(|k| {
                let body = storage.get_item(&k).ok().flatten()?;
                Some((k, body))
            })
            .collect()
    }
}

/// Names a batch by its messages, not its `sentAt`, so every retry of it maps to one entry
/// (FNV-1a over the body up to `],"sentAt"`).
pub(crate) fn batch_key(body: &[u8]) -> u64 {
    const MARKER: &[u8] = b"],\"sentAt\"";
    let end = body
        .windows(MARKER.len())
        .rposition(|w| w == MARKER)
        .unwrap_or(body.len());
    body[..end]
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_key_ignores_sent_at_only() {
        let a = br#"{"batch":[{"messageId":"1"}],"sentAt":"2026-01-01T00:00:00.000Z"}"#;
        let b = br#"{"batch":[{"messageId":"1"}],"sentAt":"2026-01-01T00:00:09.000Z"}"#;
        let c = br#"{"batch":[{"messageId":"2"}],"sentAt":"2026-01-01T00:00:00.000Z"}"#;
        assert_eq!(batch_key(a), batch_key(b));
        assert_ne!(batch_key(a), batch_key(c));
    }
}

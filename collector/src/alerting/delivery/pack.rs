//! Packing: notifications waiting for one channel leave together, as many per message as the
//! target allows, so a burst drains in a few messages instead of one per notification behind
//! the target's rate limit.

use super::{discord, slack};
use crate::alerting::notification::Notification;

/// Notifications in one email digest.
pub(crate) const EMAIL_DIGEST_MAX: usize = 20;
/// Due deliveries of one channel leased together for packing (enough for a few messages).
pub(crate) const CHANNEL_CLAIM_MAX: usize = 50;

/// How many of `ns` (in order) go into each message to a channel of `kind`: every message
/// within the target's limits. Generic webhooks get one notification per request: their
/// receivers dedupe and verify per `webhook-id`, one event each (Standard Webhooks).
pub(crate) fn message_sizes(kind: &str, ns: &[Notification]) -> Vec<usize> {
    match kind {
        "discord" => greedy(ns, |pack, n| {
            let chars = discord::embed_chars(&discord::embed(n));
            (pack.0 < discord::EMBEDS_MAX && pack.1 + chars <= discord::EMBEDS_TOTAL_MAX)
                .then_some((pack.0 + 1, pack.1 + chars))
        }),
        "slack" => greedy(ns, |pack, n| {
            let blocks = pack.1 + slack::blocks_needed(n, pack.0 == 0);
            (blocks <= slack::BLOCKS_MAX).then_some((pack.0 + 1, blocks))
        }),
        "email" => greedy(ns, |pack, _| {
            (pack.0 < EMAIL_DIGEST_MAX).then_some((pack.0 + 1, 0))
        }),
        _ => vec![1; ns.len()],
    }
}

/// Fills each message in order while `add` accepts the next notification into the pack so far
/// (count, size); a notification is always accepted into an empty message (each one alone is
/// within every limit by construction).
fn greedy(
    ns: &[Notification],
    add: impl Fn((usize, usize), &Notification) -> Option<(usize, usize)>,
) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut pack = (0, 0);
    for n in ns {
        pack = match add(pack, n) {
            Some(next) => next,
            None if pack.0 == 0 => (1, 0),
            None => {
                sizes.push(pack.0);
                add((0, 0), n).unwrap_or((1, 0))
            }
        };
    }
    if pack.0 > 0 {
        sizes.push(pack.0);
    }
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(description: &str) -> Notification {
        Notification {
            title: "t".into(),
            description: description.into(),
            colour: 0,
            fields: Vec::new(),
            url: None,
            timestamp: None,
            user: None,
            footer: None,
        }
    }

    #[test]
    fn discord_packs_ten_embeds_within_six_thousand_characters() {
        let small: Vec<_> = (0..25).map(|_| n("d")).collect();
        assert_eq!(message_sizes("discord", &small), [10, 10, 5]);
        // 1 + 1,999 characters each: three fit in 6,000, a fourth does not.
        let big: Vec<_> = (0..7).map(|_| n(&"d".repeat(1_999))).collect();
        assert_eq!(message_sizes("discord", &big), [3, 3, 1]);
    }

    #[test]
    fn slack_packs_within_fifty_blocks_and_email_within_the_digest_cap() {
        // Header + section each, and a divider between two: 17 make 50 blocks.
        let ns: Vec<_> = (0..20).map(|_| n("d")).collect();
        assert_eq!(message_sizes("slack", &ns), [17, 3]);
        let ns: Vec<_> = (0..45).map(|_| n("d")).collect();
        assert_eq!(message_sizes("email", &ns), [20, 20, 5]);
        assert_eq!(message_sizes("webhook", &ns[..3]), [1, 1, 1]);
    }
}

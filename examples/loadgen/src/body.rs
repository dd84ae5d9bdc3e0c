//! Request bodies: a `/v1/batch` of Segment track messages, each with a fresh UUIDv7
//! `messageId`, built by splicing into a fixed template (no serde on the hot path).

use std::io::Write as _;

use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;
use rand::Rng as _;
use uuid::Uuid;

/// What the generated events look like beyond their count.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    /// Distinct user ids the generator cycles through.
    pub(crate) users: u64,
    /// Timestamps spread uniformly over this many milliseconds before now (0: all now), to
    /// fill a store with history for the dashboard's benchmarks.
    pub(crate) spread_ms: i64,
    /// Every this many events one is a crawler's (`context.bot = true`, its own user id
    /// `bot-N`); 0: none.
    pub(crate) bot_every: u64,
    /// Every this many events one is a browser's page view (`type: page` with the page,
    /// referrer, campaign, location, browser, OS and device a browser SDK sends), so that the
    /// Web page's derivation runs too; 0: none.
    pub(crate) page_every: u64,
}

impl Default for Shape {
    fn default() -> Self {
        Self {
            users: 5_000,
            spread_ms: 0,
            bot_every: 0,
            page_every: 0,
        }
    }
}

/// Builds batch bodies for one connection. `seq` makes every event's `bench_seq` unique
/// across connections (the connection index sits in the high bits).
#[derive(Debug)]
pub(crate) struct BatchBuilder {
    batch: usize,
    gzip: bool,
    shape: Shape,
    seq: u64,
    /// Size of the previous body, to allocate the next one in one go.
    last_len: usize,
}

impl BatchBuilder {
    pub(crate) fn new(worker: usize, batch: usize, gzip: bool, shape: Shape) -> Self {
        Self {
            batch,
            gzip,
            shape,
            seq: (worker as u64) << 40,
            last_len: 512 + batch * 360,
        }
    }

    /// The next body, gzip-compressed if asked.
    pub(crate) fn next_body(&mut self) -> Bytes {
        let now = Utc::now();
        let timestamp = now.to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut rng = rand::rng();
        let mut buf = Vec::with_capacity(self.last_len + 64);
        buf.extend_from_slice(b"{\"batch\":[");
        let mut id = [0u8; 36];
        for i in 0..self.batch {
            if i > 0 {
                buf.push(b',');
            }
            let seq = self.seq;
            self.seq += 1;
            let message_id = Uuid::now_v7().hyphenated().encode_lower(&mut id);
            let spread;
            let event_time = if self.shape.spread_ms > 0 {
                let back =
                    chrono::Duration::milliseconds(rng.random_range(0..self.shape.spread_ms));
                spread = (now - back).to_rfc3339_opts(SecondsFormat::Millis, true);
                &spread
            } else {
                &timestamp
            };
            let bot = self.shape.bot_every > 0 && seq.is_multiple_of(self.shape.bot_every);
            let (who, flag) = if bot {
                ("bot", "\"bot\":true,")
            } else {
                ("user", "")
            };
            if self.shape.page_every > 0 && seq.is_multiple_of(self.shape.page_every) {
                let page = seq % 20;
                // Writing into a Vec cannot fail.
                let _ = write!(
                    buf,
                    "{{\"type\":\"page\",\"messageId\":\"{message_id}\",\"anonymousId\":\"{who}-{}\",\
                     \"name\":\"/p/{page}\",\"timestamp\":\"{event_time}\",\"properties\":{{\"bench_seq\":{seq}}},\
                     \"context\":{{{flag}\"page\":{{\"path\":\"/p/{page}\",\"url\":\"https://shop.example/p/{page}\",\
                     \"referrer\":\"https://www.google.com/search?q=pulseline\"}},\
                     \"campaign\":{{\"source\":\"newsletter\",\"medium\":\"email\",\"name\":\"launch\"}},\
                     \"location\":{{\"country\":\"DE\"}},\"browser\":{{\"name\":\"Chrome\"}},\
                     \"os\":{{\"name\":\"Linux\"}},\"device\":{{\"type\":\"desktop\"}}}}}}",
                    seq % self.shape.users.max(1),
                );
                continue;
            }
            buf.extend_from_slice(b"{\"type\":\"track\",\"messageId\":\"");
            buf.extend_from_slice(message_id.as_bytes());
            // Writing into a Vec cannot fail.
            let _ = write!(
                buf,
                "\",\"userId\":\"{who}-{}\",\"event\":\"Order Completed\",\"timestamp\":\"{event_time}\",\
                 \"properties\":{{\"bench_seq\":{seq},\"plan\":\"pro\",\"amount\":42.5,\"flag\":true,\"tag\":\"abc\"}},\
                 \"context\":{{{flag}\"library\":{{\"name\":\"pulseline-loadgen\",\"version\":\"{}\"}}}}}}",
                seq % self.shape.users.max(1),
                env!("CARGO_PKG_VERSION"),
            );
        }
        let _ = write!(buf, "],\"sentAt\":\"{timestamp}\"}}");
        self.last_len = buf.len();
        if self.gzip {
            let mut enc = GzEncoder::new(Vec::with_capacity(buf.len() / 4), Compression::fast());
            // Writing into a Vec cannot fail.
            let _ = enc.write_all(&buf);
            Bytes::from(enc.finish().unwrap_or_default())
        } else {
            Bytes::from(buf)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::io::Read;

    use super::*;

    #[test]
    fn bodies_are_valid_batches_with_unique_ids() {
        let mut b = BatchBuilder::new(3, 50, false, Shape::default());
        let mut ids = HashSet::new();
        for _ in 0..3 {
            let body = b.next_body();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let batch = v["batch"].as_array().unwrap();
            assert_eq!(batch.len(), 50);
            for m in batch {
                assert_eq!(m["type"], "track");
                assert_eq!(m["properties"].as_object().unwrap().len(), 5);
                let id = m["messageId"].as_str().unwrap();
                assert_eq!(Uuid::parse_str(id).unwrap().get_version_num(), 7);
                assert!(ids.insert(id.to_owned()));
                assert!(
                    chrono::DateTime::parse_from_rfc3339(m["timestamp"].as_str().unwrap()).is_ok()
                );
            }
        }
    }

    #[test]
    fn shape_spreads_timestamps_and_cycles_users() {
        let day = 86_400_000;
        let shape = Shape {
            users: 7,
            spread_ms: 3 * day,
            ..Shape::default()
        };
        let body = BatchBuilder::new(0, 500, false, shape).next_body();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let now = chrono::Utc::now().timestamp_millis();
        let mut users = HashSet::new();
        let mut oldest = now;
        for m in v["batch"].as_array().unwrap() {
            users.insert(m["userId"].as_str().unwrap().to_owned());
            let t = chrono::DateTime::parse_from_rfc3339(m["timestamp"].as_str().unwrap())
                .unwrap()
                .timestamp_millis();
            assert!(t <= now && t > now - 3 * day - 60_000, "{t}");
            oldest = oldest.min(t);
        }
        assert_eq!(users.len(), 7);
        assert!(
            oldest < now - 2 * day,
            "500 uniform draws over 3 days reach the first day"
        );
    }

    #[test]
    fn every_nth_event_is_a_crawlers() {
        let shape = Shape {
            bot_every: 10,
            ..Shape::default()
        };
        let body = BatchBuilder::new(0, 100, false, shape).next_body();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let bots: Vec<&serde_json::Value> = v["batch"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["context"]["bot"] == true)
            .collect();
        assert_eq!(bots.len(), 10);
        assert!(
            bots.iter()
                .all(|m| m["userId"].as_str().unwrap().starts_with("bot-"))
        );
    }

    #[test]
    fn every_nth_event_is_a_page_view() {
        let shape = Shape {
            page_every: 4,
            ..Shape::default()
        };
        let body = BatchBuilder::new(0, 100, false, shape).next_body();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let batch = v["batch"].as_array().unwrap();
        let pages: Vec<&serde_json::Value> = batch.iter().filter(|m| m["type"] == "page").collect();
        assert_eq!((batch.len(), pages.len()), (100, 25));
        assert!(pages.iter().all(|m| {
            m["context"]["page"]["path"]
                .as_str()
                .unwrap()
                .starts_with("/p/")
                && m["anonymousId"].is_string()
        }));
    }

    #[test]
    fn gzip_bodies_inflate_to_json() {
        let body = BatchBuilder::new(0, 10, true, Shape::default()).next_body();
        let mut text = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut text)
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["batch"].as_array().unwrap().len(), 10);
    }
}

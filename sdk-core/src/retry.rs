//! Classifying a send's outcome and deciding when to try again.
//!
//! Exponential backoff comes from [`backon`]'s `ExponentialBuilder` (the design card's `backoff`
//! crate is unmaintained, RUSTSEC-2025-0012). backon's own jitter *adds* up to one delay on top
//! of the exponential delay; the SDK instead applies AWS-style *full jitter* (uniform in
//! `[0, delay]`), which spreads a fleet of clients recovering from the same outage best, so only
//! backon's exponential schedule is used.

use std::time::Duration;

use web_time::{Instant, SystemTime};

use crate::{DropReason, Error, TransportResponse, ack};
use backon::{BackoffBuilder, ExponentialBuilder};
use rand::Rng;

pub(crate) use crate::ack::Rejection;

/// What to do with a batch after one attempt.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Stored. `rejected` lists the messages the collector refused (not retried).
    Delivered { rejected: Vec<Rejection> },
    /// Try again later; `retry_after` is the server's explicit request, if any.
    Retry {
        retry_after: Option<Duration>,
        error: Error,
    },
    /// 413 for a batch of several messages: send each half separately.
    Split { error: Error },
    /// Never retried.
    Drop { reason: DropReason, error: Error },
}

/// Classifies one attempt's outcome for a batch of `messages` messages.
pub(crate) fn classify(
    outcome: Result<TransportResponse, Error>,
    messages: usize,
    now: SystemTime,
) -> Verdict {
    let response = match outcome {
        Ok(response) => response,
        Err(error) => {
            return Verdict::Retry {
                retry_after: None,
                error,
            };
        }
    };
    let status = response.status;
    if (200..300).contains(&status) {
        // Every 2xx means committed; an unparsable body cannot un-commit it.
        let rejected = ack::rejected(&response.body);
        return Verdict::Delivered { rejected };
    }
    let retry_after = response
        .retry_after
        .as_deref()
        .and_then(|v| parse_retry_after(v, now));
    let body = String::from_utf8_lossy(&response.body[..response.body.len().min(512)]).into_owned();
    let error = Error::Http {
        status,
        retry_after,
        body,
    };
    match status {
        413 if messages > 1 => Verdict::Split { error },
        413 => Verdict::Drop {
            reason: DropReason::TooLarge,
            error,
        },
        408 | 429 => Verdict::Retry { retry_after, error },
        400..=499 => Verdict::Drop {
            reason: DropReason::ClientError,
            error,
        },
        // 5xx, and anything unexpected (1xx/3xx after redirects): a misconfigured proxy should
        // not lose data, and the retry budget bounds the cost.
        _ => Verdict::Retry { retry_after, error },
    }
}

/// The statuses after which [`classify`] never sends the same batch again.
pub(crate) fn is_final_status(status: u16) -> bool {
    (200..300).contains(&status) || ((400..500).contains(&status) && !matches!(status, 408 | 429))
}

/// Parses `Retry-After`: delta-seconds or an HTTP date (relative to `now`; past dates give 0).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Some(delay) = parse_seconds(value) {
        return Some(delay);
    }
    // httpdate speaks std's SystemTime, which in a browser is a different type from the clock's
    // web-time one: compare both as durations since the epoch.
    let at = httpdate::parse_http_date(value)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    let now = now.duration_since(web_time::UNIX_EPOCH).ok()?;
    Some(at.saturating_sub(now))
}

/// Longest delay a fractional or out-of-range `Retry-After` in seconds is read as (~31 years:
/// "effectively never", and the retry policy clamps it to `max_retry_after` anyway).
const MAX_RETRY_AFTER_SECS: u64 = 1_000_000_000;

/// `Retry-After` as seconds: `delta-seconds` (RFC 9110: digits), and the fractional seconds some
/// servers send (`1.5`). Read digit by digit rather than through `f64`: the standard library's
/// float parser brings its power-of-five tables, about 13 KB brotli of the browser SDK's wasm.
fn parse_seconds(value: &str) -> Option<Duration> {
    let unsigned = value.strip_prefix('+').unwrap_or(value);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let is_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.len() + fraction.len() == 0 || !is_digits(whole) || !is_digits(fraction) {
        return None;
    }
    // Plain delta-seconds: exact, however large.
    if whole.len() == unsigned.len()
        && let Ok(secs) = whole.parse::<u64>()
    {
        return Some(Duration::from_secs(secs));
    }
    let max = Duration::from_secs(MAX_RETRY_AFTER_SECS);
    let secs = match whole {
        "" => 0,
        digits => digits.parse::<u64>().unwrap_or(u64::MAX),
    };
    if secs >= MAX_RETRY_AFTER_SECS {
        return Some(max);
    }
    // Nanoseconds from the first nine fraction digits, right-padded with zeros.
    let nanos = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0u32, |n, digit| n * 10 + u32::from(digit - b'0'));
    Some(Duration::new(secs, nanos).min(max))
}

/// When to retry a failing batch, and when to stop trying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// First backoff cap.
    pub(crate) min_delay: Duration,
    /// Backoff cap ceiling.
    pub(crate) max_delay: Duration,
    /// Longest `Retry-After` honoured; larger values are clamped to it.
    pub(crate) max_retry_after: Duration,
    /// Time from a batch's first failure after which it stops being retried from memory.
    pub(crate) max_elapsed: Duration,
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1-based), or `None` when the retry would start
    /// after the budget: the batch then goes to the disk buffer (or is dropped without one).
    pub(crate) fn next_delay(
        &self,
        retry: u32,
        first_failure: Instant,
        now: Instant,
        retry_after: Option<Duration>,
        rng: &mut impl Rng,
    ) -> Option<Duration> {
        let delay = match retry_after {
            Some(asked) => asked.min(self.max_retry_after),
            None => {
                let cap = ExponentialBuilder::default()
                    .with_min_delay(self.min_delay)
                    .with_max_delay(self.max_delay)
                    .with_factor(2.0)
                    .with_max_times(usize::MAX)
                    .build()
                    .nth(retry.saturating_sub(1) as usize)
                    .unwrap_or(self.max_delay);
                let cap_micros = cap.as_micros().min(u64::MAX as u128) as u64;
                Duration::from_micros(rng.random_range(0..=cap_micros))
            }
        };
        let elapsed = now.saturating_duration_since(first_failure);
        // Saturating: `Retry-After` and `max_retry_after` can both be near `Duration::MAX`.
        (elapsed.saturating_add(delay) <= self.max_elapsed).then_some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TransportErrorKind;
    use rand::{SeedableRng, rngs::StdRng};
    use std::time::UNIX_EPOCH;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    #[test]
    fn is_final_status_agrees_with_classify() {
        for status in 100..600 {
            let response = TransportResponse::new(status, Vec::new());
            // A split sends two new, smaller bodies: this one is never sent again.
            let retried = matches!(
                classify(Ok(response.clone()), 2, now()),
                Verdict::Retry { .. }
            );
            assert_eq!(response.is_final(), !retried, "status {status}");
        }
    }

    fn status(code: u16) -> Verdict {
        classify(
            Ok(TransportResponse::new(code, b"nope".to_vec())),
            10,
            now(),
        )
    }

    #[test]
    fn statuses_are_classified() {
        assert!(matches!(status(200), Verdict::Delivered { ref rejected } if rejected.is_empty()));
        assert!(matches!(status(204), Verdict::Delivered { .. }));
        for code in [500, 502, 503, 504, 429, 408] {
            assert!(matches!(status(code), Verdict::Retry { .. }), "{code}");
        }
        for code in [400, 401, 403, 404, 415, 422] {
            assert!(
                matches!(
                    status(code),
                    Verdict::Drop {
                        reason: DropReason::ClientError,
                        ..
                    }
                ),
                "{code}"
            );
        }
        assert!(matches!(status(413), Verdict::Split { .. }));
        let single = classify(Ok(TransportResponse::new(413, vec![])), 1, now());
        assert!(matches!(
            single,
            Verdict::Drop {
                reason: DropReason::TooLarge,
                ..
            }
        ));
    }

    #[test]
    fn transport_errors_are_retryable() {
        for kind in [
            TransportErrorKind::Connect,
            TransportErrorKind::Timeout,
            TransportErrorKind::Other,
        ] {
            let v = classify(
                Err(Error::Transport {
                    kind,
                    message: "x".into(),
                }),
                3,
                now(),
            );
            assert!(matches!(
                v,
                Verdict::Retry {
                    retry_after: None,
                    ..
                }
            ));
        }
    }

    #[test]
    fn rejected_messages_are_read_from_the_ack() {
        let body = br#"{"success":true,"accepted":1,"rejected":[{"index":1,"messageId":"m2","error":"event is required"}]}"#;
        let v = classify(Ok(TransportResponse::new(200, body.to_vec())), 2, now());
        let Verdict::Delivered { rejected } = v else {
            panic!("{v:?}")
        };
        assert_eq!(
            rejected,
            vec![Rejection {
                index: Some(1),
                message_id: Some("m2".into()),
                error: "event is required".into()
            }]
        );
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("7", now()), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after(" 2 ", now()),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            parse_retry_after("1.5", now()),
            Some(Duration::from_millis(1500))
        );
        let later = httpdate::fmt_http_date(now() + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now()),
            Some(Duration::from_secs(30))
        );
        let earlier = httpdate::fmt_http_date(now() - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now()), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now()), None);
        assert_eq!(parse_retry_after(".", now()), None);
        assert_eq!(parse_retry_after("1.2.3", now()), None);
        assert_eq!(parse_retry_after("", now()), None);
        assert_eq!(parse_retry_after("-3", now()), None);
        let v = classify(
            Ok(TransportResponse::new(429, vec![]).with_retry_after("12")),
            1,
            now(),
        );
        assert!(
            matches!(v, Verdict::Retry { retry_after: Some(d), .. } if d == Duration::from_secs(12))
        );
    }

    #[test]
    fn retry_after_seconds_are_read_digit_by_digit() {
        let secs = |v| parse_retry_after(v, now());
        assert_eq!(secs("0.25"), Some(Duration::from_millis(250)));
        assert_eq!(secs(".5"), Some(Duration::from_millis(500)));
        assert_eq!(secs("3."), Some(Duration::from_secs(3)));
        assert_eq!(secs("+2"), Some(Duration::from_secs(2)));
        // Nanosecond precision; further digits are dropped.
        assert_eq!(secs("1.0000000019"), Some(Duration::new(1, 1)));
        // Plain delta-seconds are exact however large; a fraction or an overflow is clamped.
        assert_eq!(
            secs("18446744073709551615"),
            Some(Duration::from_secs(u64::MAX))
        );
        let max = Some(Duration::from_secs(MAX_RETRY_AFTER_SECS));
        assert_eq!(secs("18446744073709551616"), max);
        assert_eq!(secs("1000000000.5"), max);
        assert_eq!(
            secs("999999999.5"),
            Some(Duration::new(999_999_999, 500_000_000))
        );
        for bad in ["1e3", "inf", "NaN", "0x10", "1,5", "+", "+.", "- 1", "1 .5"] {
            assert_eq!(secs(bad), None, "{bad:?}");
        }
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
            max_elapsed: Duration::from_secs(120),
        }
    }

    #[test]
    fn backoff_is_full_jitter_under_an_exponential_cap() {
        let p = policy();
        let mut rng = StdRng::seed_from_u64(7);
        let t0 = Instant::now();
        for retry in 1..=12u32 {
            let cap = Duration::from_millis(100 * 2u64.pow(retry - 1)).min(p.max_delay);
            let samples: Vec<_> = (0..400)
                .map(|_| p.next_delay(retry, t0, t0, None, &mut rng).unwrap())
                .collect();
            assert!(samples.iter().all(|d| *d <= cap), "retry {retry}");
            // Full jitter: spread over the whole range, not clustered near the cap.
            let low = samples.iter().filter(|d| **d < cap / 4).count();
            let high = samples.iter().filter(|d| **d > cap * 3 / 4).count();
            assert!(
                low > 50 && high > 50,
                "retry {retry}: low {low} high {high}"
            );
        }
    }

    #[test]
    fn retry_after_is_honoured_and_clamped() {
        let p = policy();
        let mut rng = StdRng::seed_from_u64(1);
        let t0 = Instant::now();
        assert_eq!(
            p.next_delay(1, t0, t0, Some(Duration::from_secs(5)), &mut rng),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            p.next_delay(1, t0, t0, Some(Duration::from_secs(3600)), &mut rng),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn delays_near_duration_max_do_not_overflow() {
        let p = RetryPolicy {
            max_retry_after: Duration::MAX,
            max_elapsed: Duration::MAX,
            ..policy()
        };
        let mut rng = StdRng::seed_from_u64(1);
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(1);
        assert_eq!(
            p.next_delay(1, t0, later, Some(Duration::MAX), &mut rng),
            Some(Duration::MAX)
        );
    }

    #[test]
    fn budget_stops_retries_that_would_start_too_late() {
        let p = policy();
        let mut rng = StdRng::seed_from_u64(1);
        let t0 = Instant::now();
        let asked = Some(Duration::from_secs(30));
        assert!(
            p.next_delay(3, t0, t0 + Duration::from_secs(90), asked, &mut rng)
                .is_some()
        );
        assert!(
            p.next_delay(3, t0, t0 + Duration::from_secs(91), asked, &mut rng)
                .is_none()
        );
    }
}

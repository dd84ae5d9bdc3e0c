//! RFC 3339 timestamps without a date-time dependency: capture formats one per message, so this
//! is on the caller's hot path and writes straight into the message buffer.

use web_time::{SystemTime, UNIX_EPOCH};

/// Length of the text written by [`write_rfc3339_millis`]: `2026-01-31T23:59:59.999Z`.
pub(crate) const RFC3339_MILLIS_LEN: usize = 24;

/// Appends `time` as an RFC 3339 UTC timestamp with millisecond precision.
///
/// Returns `None` for times before 1970 or after 9999, which no collector accepts.
pub(crate) fn write_rfc3339_millis(time: SystemTime, out: &mut Vec<u8>) -> Option<()> {
    let since_epoch = time.duration_since(UNIX_EPOCH).ok()?;
    let secs = since_epoch.as_secs();
    let millis = since_epoch.subsec_millis();
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    if year > 9999 {
        return None;
    }
    let (hour, minute, second) = (rem / 3600, (rem / 60) % 60, rem % 60);
    let mut buf = [0u8; RFC3339_MILLIS_LEN];
    put_digits(&mut buf[0..4], year as u64);
    buf[4] = b'-';
    put_digits(&mut buf[5..7], month as u64);
    buf[7] = b'-';
    put_digits(&mut buf[8..10], day as u64);
    buf[10] = b'T';
    put_digits(&mut buf[11..13], hour);
    buf[13] = b':';
    put_digits(&mut buf[14..16], minute);
    buf[16] = b':';
    put_digits(&mut buf[17..19], second);
    buf[19] = b'.';
    put_digits(&mut buf[20..23], millis as u64);
    buf[23] = b'Z';
    out.extend_from_slice(&buf);
    Some(())
}

/// Formats `time` as an owned RFC 3339 string (used for `sentAt`, once per request).
pub(crate) fn rfc3339_millis(time: SystemTime) -> String {
    let mut out = Vec::with_capacity(RFC3339_MILLIS_LEN);
    if write_rfc3339_millis(time, &mut out).is_none() {
        out.clear();
        out.extend_from_slice(b"1970-01-01T00:00:00.000Z");
    }
    // Only ASCII digits and separators were written.
    String::from_utf8(out).unwrap_or_default()
}

fn put_digits(out: &mut [u8], mut value: u64) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Formats a time in milliseconds since 1970 as JavaScript's `Date.prototype.toISOString`
/// does: RFC 3339 in UTC with milliseconds for years 0 to 9999, and the extended `±YYYYYY`
/// form beyond. `None` for NaN, infinities and times outside a JavaScript `Date`'s range
/// (±8.64e15 ms). The bindings write dates found in properties with it.
///
/// ```
/// assert_eq!(pulseline::iso8601_millis(1_700_000_000_123.0).unwrap(), "2023-11-14T22:13:20.123Z");
/// assert_eq!(pulseline::iso8601_millis(-1.0).unwrap(), "1969-12-31T23:59:59.999Z");
/// assert_eq!(pulseline::iso8601_millis(f64::NAN), None);
/// ```
pub fn iso8601_millis(ms: f64) -> Option<String> {
    if !ms.is_finite() || ms.abs() > 8.64e15 {
        return None;
    }
    let ms = ms as i64;
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let (h, min, sec, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    let year = if (0..=9999).contains(&y) {
        format!("{y:04}")
    } else {
        format!("{}{:06}", if y < 0 { '-' } else { '+' }, y.abs())
    };
    Some(format!(
        "{year}-{m:02}-{d:02}T{h:02}:{min:02}:{sec:02}.{milli:03}Z"
    ))
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, millis: u64) -> String {
        rfc3339_millis(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis))
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.007Z");
        assert_eq!(at(1_709_251_199, 999), "2024-02-29T23:59:59.999Z");
        assert_eq!(at(4_102_444_800, 120), "2100-01-01T00:00:00.120Z");
    }

    #[test]
    fn agrees_with_httpdate_on_every_37th_day_for_60_years() {
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        for day in (0..22_000u64).step_by(37) {
            let t = UNIX_EPOCH + Duration::from_secs(day * 86_400 + 43_200);
            let ours = rfc3339_millis(t);
            // IMF-fixdate: "Sun, 06 Nov 1994 12:00:00 GMT"
            let http = httpdate::fmt_http_date(t);
            let parts: Vec<&str> = http.split(' ').collect();
            let month = MONTHS.iter().position(|m| *m == parts[2]).unwrap() + 1;
            let expected = format!("{}-{month:02}-{}T12:00:00.000Z", parts[3], parts[1]);
            assert_eq!(ours, expected);
        }
    }

    #[test]
    fn iso8601_matches_to_iso_string() {
        assert_eq!(iso8601_millis(0.0).unwrap(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            iso8601_millis(951_782_400_000.0).unwrap(),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            iso8601_millis(8.64e15).unwrap(),
            "+275760-09-13T00:00:00.000Z"
        );
        assert_eq!(
            iso8601_millis(-8.64e15).unwrap(),
            "-271821-04-20T00:00:00.000Z"
        );
        assert_eq!(iso8601_millis(8.64e15 + 1.0), None);
        assert_eq!(iso8601_millis(f64::INFINITY), None);
    }

    #[test]
    fn rejects_times_before_the_epoch() {
        let mut out = Vec::new();
        assert!(write_rfc3339_millis(UNIX_EPOCH - Duration::from_secs(1), &mut out).is_none());
    }
}

//! A mergeable quantile sketch for Web Vitals (DDSketch's logarithmic bins): each hour's
//! samples are kept as counts per bin, a range's percentile is read from the sum of its hours'
//! bins, and its value is within [`RELATIVE_ACCURACY`] of the exact percentile of the same
//! samples ([`crate::domain::percentile`]).
//!
//! Why not the `sketches-ddsketch` crate: its only stored form is serde of its private fields,
//! floating-point configuration included, which must come back bit for bit for two sketches to
//! merge; and its quantile takes the lower rank, where the product's one percentile definition
//! interpolates between the two nearest ranks. The bins here are sparse and encoded compactly.

use std::collections::BTreeMap;

/// Every percentile read from a sketch is within this share of the exact one (1%).
pub const RELATIVE_ACCURACY: f64 = 0.01;
/// Samples from 0 up to this count as 0 (an absolute error of at most this).
pub const MIN_POSITIVE: f64 = 1e-6;
/// Most bins one sketch keeps: past it the lowest bins are folded together, which leaves
/// percentiles among the upper 2048 bins (a ratio of about 10^17 between smallest and
/// largest) exact to [`RELATIVE_ACCURACY`].
pub const MAX_BINS: usize = 2_048;

/// The stored form's version byte.
const VERSION: u8 = 1;

fn gamma() -> f64 {
    (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY)
}

/// The bin of a positive value: values in `(gamma^(k-1), gamma^k]` share bin `k`.
#[allow(clippy::cast_possible_truncation)] // |ln(v) / ln(gamma)| < 36,000 for finite v
fn key(v: f64) -> i32 {
    (v.ln() / gamma().ln()).ceil() as i32
}

/// The value that stands for bin `k`: within [`RELATIVE_ACCURACY`] of every value in it.
fn representative(k: i32) -> f64 {
    let g = gamma();
    2.0 * g.powi(k) / (g + 1.0)
}

/// Counts of non-negative samples per logarithmic bin, and the exact smallest and largest
/// (a lone sample, or the extremes, read back as sent).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sketch {
    zeros: u64,
    bins: BTreeMap<i32, u64>,
    /// Smallest and largest sample; meaningless while the sketch is empty.
    min: f64,
    max: f64,
}

/// A stored sketch that cannot be read (another version, or damaged).
#[derive(Debug, thiserror::Error)]
#[error("unreadable quantile sketch: {0}")]
pub struct SketchError(&'static str);

impl Sketch {
    /// Adds a sample; negative, infinite and NaN samples are not measurements and are ignored.
    pub fn add(&mut self, v: f64) {
        if !v.is_finite() || v < 0.0 {
            return;
        }
        self.widen(v, v);
        if v <= MIN_POSITIVE {
            self.zeros += 1;
        } else {
            *self.bins.entry(key(v)).or_default() += 1;
            self.collapse();
        }
    }

    pub fn merge(&mut self, other: &Sketch) {
        if other.count() > 0 {
            self.widen(other.min, other.max);
        }
        self.zeros += other.zeros;
        for (k, n) in &other.bins {
            *self.bins.entry(*k).or_default() += n;
        }
        self.collapse();
    }

    fn widen(&mut self, min: f64, max: f64) {
        if self.count() == 0 {
            (self.min, self.max) = (min, max);
        } else {
            self.min = self.min.min(min);
            self.max = self.max.max(max);
        }
    }

    pub fn count(&self) -> u64 {
        self.zeros + self.bins.values().sum::<u64>()
    }

    fn collapse(&mut self) {
        while self.bins.len() > MAX_BINS {
            if let Some((_, n)) = self.bins.pop_first()
                && let Some(mut lowest) = self.bins.first_entry()
            {
                *lowest.get_mut() += n;
            }
        }
    }

    /// The value of the sample at `rank` (0-based, ascending).
    fn at_rank(&self, rank: u64) -> f64 {
        if rank < self.zeros {
            return 0.0;
        }
        let mut seen = self.zeros;
        for (k, n) in &self.bins {
            seen += n;
            if rank < seen {
                return representative(*k);
            }
        }
        self.bins
            .last_key_value()
            .map_or(0.0, |(k, _)| representative(*k))
    }

    /// The `q` quantile, interpolated between the two nearest ranks as
    /// [`crate::domain::percentile::percentile`] does; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let last = self.count().checked_sub(1)?;
        #[allow(clippy::cast_precision_loss)]
        let pos = q.clamp(0.0, 1.0) * last as f64;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let lo = pos.floor() as u64;
        #[allow(clippy::cast_precision_loss)]
        let frac = pos - lo as f64;
        // Each bin's value is within the accuracy of its samples', and so is the exact
        // extreme: clamping to them only moves the answer closer.
        let at = |rank: u64| self.at_rank(rank).clamp(self.min, self.max);
        let v_lo = at(lo);
        if frac == 0.0 {
            return Some(v_lo);
        }
        let v_hi = at((lo + 1).min(last));
        Some(v_lo + (v_hi - v_lo) * frac)
    }

    /// The stored form: a version byte, the smallest and largest samples (IEEE 754, little
    /// endian), then as LEB128 varints the zero count, the bin count, and each bin as the
    /// difference from the previous key (zigzag) and its count.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(20 + self.bins.len() * 3);
        out.push(VERSION);
        out.extend(self.min.to_le_bytes());
        out.extend(self.max.to_le_bytes());
        put(&mut out, self.zeros);
        put(&mut out, self.bins.len() as u64);
        let mut prev = 0i64;
        for (k, n) in &self.bins {
            let delta = i64::from(*k) - prev;
            prev = i64::from(*k);
            #[allow(clippy::cast_sign_loss)]
            put(&mut out, ((delta << 1) ^ (delta >> 63)) as u64);
            put(&mut out, *n);
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, SketchError> {
        let (&version, mut rest) = bytes.split_first().ok_or(SketchError("empty"))?;
        if version != VERSION {
            return Err(SketchError("unknown version"));
        }
        let mut float = || -> Result<f64, SketchError> {
            let (bytes, tail) = rest
                .split_first_chunk::<8>()
                .ok_or(SketchError("truncated"))?;
            rest = tail;
            Ok(f64::from_le_bytes(*bytes))
        };
        let (min, max) = (float()?, float()?);
        let zeros = take(&mut rest)?;
        let len = take(&mut rest)?;
        if len > MAX_BINS as u64 {
            return Err(SketchError("too many bins"));
        }
        let mut bins = BTreeMap::new();
        let mut prev = 0i64;
        for _ in 0..len {
            let z = take(&mut rest)?;
            #[allow(clippy::cast_possible_wrap)]
            let delta = (z >> 1) as i64 ^ -((z & 1) as i64);
            prev = prev.checked_add(delta).ok_or(SketchError("bad key"))?;
            let k = i32::try_from(prev).map_err(|_| SketchError("bad key"))?;
            bins.insert(k, take(&mut rest)?);
        }
        if !rest.is_empty() {
            return Err(SketchError("trailing bytes"));
        }
        Ok(Self {
            zeros,
            bins,
            min,
            max,
        })
    }
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    loop {
        #[allow(clippy::cast_possible_truncation)]
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn take(bytes: &mut &[u8]) -> Result<u64, SketchError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first().ok_or(SketchError("truncated"))?;
        *bytes = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(SketchError("varint too long"))
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::domain::percentile::percentile;

    #[test]
    fn merged_sketches_give_percentiles_within_the_relative_accuracy() {
        let mut rng = StdRng::seed_from_u64(20);
        for round in 0..50 {
            let mut all = Vec::new();
            let mut merged = Sketch::default();
            for _ in 0..rng.random_range(1..20) {
                let mut part = Sketch::default();
                for _ in 0..rng.random_range(0..300) {
                    // Long-tailed, like load times; CLS-like fractions and zeros too.
                    let v = match rng.random_range(0..3) {
                        0 => rng.random_range(0.0f64..1.0).powi(3) * 10_000.0,
                        1 => rng.random_range(0.0..0.5),
                        _ => 0.0,
                    };
                    part.add(v);
                    all.push(v);
                }
                let part = Sketch::decode(&part.encode()).unwrap();
                merged.merge(&part);
            }
            for q in [0.5, 0.75, 0.95] {
                let exact = percentile(&mut all, q);
                let sketched = merged.quantile(q);
                match (exact, sketched) {
                    (Some(e), Some(s)) => assert!(
                        (s - e).abs() <= RELATIVE_ACCURACY * e + MIN_POSITIVE,
                        "round {round} q {q}: {s} vs {e}"
                    ),
                    (e, s) => assert_eq!(e, s),
                }
            }
        }
    }

    #[test]
    fn odd_samples_are_ignored_and_bins_stay_bounded() {
        let mut s = Sketch::default();
        for v in [-1.0, f64::NAN, f64::INFINITY] {
            s.add(v);
        }
        assert_eq!(s.count(), 0);
        // Each sample a bin of its own: more bins than MAX_BINS, the lowest folded together.
        for i in 0..3_000 {
            s.add(1.021f64.powi(i));
        }
        assert_eq!(s.bins.len(), MAX_BINS);
        assert_eq!(s.count(), 3_000);
        let top = 1.021f64.powi(2_999);
        assert!((s.quantile(1.0).unwrap() - top).abs() <= RELATIVE_ACCURACY * top);
        assert_eq!(Sketch::decode(&s.encode()).unwrap(), s);
        assert!(Sketch::decode(&[2, 0, 0]).is_err());
        let mut cut = Sketch::default().encode();
        cut.extend([1, 0x80]);
        assert!(Sketch::decode(&cut).is_err());
        // A lone sample reads back as sent.
        let mut one = Sketch::default();
        one.add(2_000.0);
        assert_eq!(one.quantile(0.75), Some(2_000.0));
    }
}

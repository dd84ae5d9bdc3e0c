//! Unique visitors as HyperLogLog sketches (the `hyperloglockless` crate): one per rollup row,
//! merged over any range by taking each register's maximum.
//!
//! Precision 12 (4,096 registers): a standard error of about 1.6% of the count (the crate's
//! `error_for_precision(12)`); small sets are near exact. Stored as the non-zero registers
//! (two bytes of index, one of value each) while that is shorter than the 4,096 registers, so
//! an hour with few visitors costs a few bytes.
//!
//! The fold appends to a pair row's sketch without reading it (`web_daily_pairs`, see
//! [`Visitors::tail`]), so a stored sketch is: a sparse tag then index/value triples in any
//! order, an index possibly repeated (its register is the largest value); or a dense tag, the
//! 4,096 registers, then such triples. [`Visitors::to_bytes`] writes the short form (sorted,
//! no repeats, no triples after the registers); every reader takes either.

use hyperloglockless::DefaultHasher;
use std::hash::BuildHasher;

use hyperloglockless::HyperLogLog;

/// Registers are `1 << PRECISION`.
pub const PRECISION: u8 = 12;
const REGISTERS: usize = 1 << PRECISION;
/// A fixed seed: sketches written by any collector, before or after a restart, merge.
const SEED: u128 = 0x7075_6c73_656c_696e_655f_7669_7369_7473;
const SPARSE: u8 = 1;
const DENSE: u8 = 2;

/// A stored sketch longer than this (bytes) is rewritten in its short form by the fold (about
/// twice a dense sketch): appended triples would otherwise grow a busy row without bound.
pub const COMPACT_ABOVE: usize = 2 * (1 + REGISTERS);

/// A stored sketch's dense registers (if dense) and the triples after them (the whole
/// rest if sparse); `None` for a blob this code did not write.
fn split(bytes: &[u8]) -> Option<(Option<&[u8]>, &[u8])> {
    match bytes.split_first() {
        Some((&DENSE, rest))
            if rest.len() >= REGISTERS && (rest.len() - REGISTERS).is_multiple_of(3) =>
        {
            let (registers, triples) = rest.split_at(REGISTERS);
            Some((Some(registers), triples))
        }
        Some((&SPARSE, rest)) => Some((None, rest)),
        _ => None,
    }
}

/// The registers of one sketch, or of the union of several.
#[derive(Debug, Clone)]
pub struct Visitors {
    registers: Vec<u8>,
}

impl Default for Visitors {
    fn default() -> Self {
        Self {
            registers: vec![0; REGISTERS],
        }
    }
}

/// 2^-r for a register's value r, exactly: the exponent alone. A view counts hundreds of
/// sketches of 4,096 registers each, and `powi` was a twentieth of its CPU.
fn inverse_power(r: u8) -> f64 {
    f64::from_bits((1023 - u64::from(r)) << 52)
}

impl Visitors {
    fn sketch(&self) -> HyperLogLog<DefaultHasher> {
        let zeros = self.registers.iter().filter(|r| **r == 0).count();
        let sum: f64 = self.registers.iter().map(|r| inverse_power(*r)).sum();
        HyperLogLog::from_parts(
            self.registers.clone().into_boxed_slice(),
            DefaultHasher::seeded(&SEED.to_be_bytes()),
            zeros,
            sum,
        )
    }

    /// Adds visitors, hashed the one way every sketch of the collector is: the crate's seeded
    /// hasher, and its register choice (the hash's top bits pick the register, one plus its
    /// trailing zeros is the rank), without rebuilding a sketch per call.
    /// Returns whether a register grew (if not, the sketch's stored bytes still hold).
    pub fn insert_all<'a>(&mut self, visitors: impl IntoIterator<Item = &'a str>) -> bool {
        let hasher = DefaultHasher::seeded(&SEED.to_be_bytes());
        let mut grew = false;
        for v in visitors {
            let hash = hasher.hash_one(v);
            let index = (hash >> (64 - u32::from(PRECISION))) as usize;
            let rank = 1 + hash.trailing_zeros() as u8;
            if rank > self.registers[index] {
                self.registers[index] = rank;
                grew = true;
            }
        }
        grew
    }

    /// The union with a stored sketch; a blob this code did not write is ignored.
    pub fn merge_bytes(&mut self, bytes: &[u8]) {
        let Some((dense, triples)) = split(bytes) else {
            return;
        };
        if let Some(dense) = dense {
            for (r, x) in self.registers.iter_mut().zip(dense) {
                *r = (*r).max(*x);
            }
        }
        for pair in triples.chunks_exact(3) {
            let i = usize::from(u16::from_le_bytes([pair[0], pair[1]]));
            if let Some(r) = self.registers.get_mut(i) {
                *r = (*r).max(pair[2]);
            }
        }
    }

    /// The (register, value) pairs of `visitors`, one per register (its largest value), in
    /// register order: what adding them can raise.
    pub fn entries<'a>(visitors: impl IntoIterator<Item = &'a str>) -> Vec<(u16, u8)> {
        let hasher = DefaultHasher::seeded(&SEED.to_be_bytes());
        let mut out: Vec<(u16, u8)> = visitors
            .into_iter()
            .map(|v| {
                let hash = hasher.hash_one(v);
                let index = (hash >> (64 - u32::from(PRECISION))) as u16;
                (index, 1 + hash.trailing_zeros() as u8)
            })
            .collect();
        // Largest value first within a register, so the dedup below keeps it.
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        out.dedup_by_key(|e| e.0);
        out
    }

    /// `entries` as a sparse sketch: what a new row stores, and (after its tag byte) what the
    /// fold appends to a stored sketch of either form to add them, without reading it. The
    /// union is the same as [`Self::add_to_bytes`]'s; only the bytes are longer, until
    /// [`Self::compact`].
    pub fn tail(entries: &[(u16, u8)]) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + entries.len() * 3);
        out.push(SPARSE);
        for (i, r) in entries {
            out.extend_from_slice(&i.to_le_bytes());
            out.push(*r);
        }
        out
    }

    /// The short form of a stored sketch (what [`Self::to_bytes`] writes for its registers).
    pub fn compact(bytes: &[u8]) -> Vec<u8> {
        let mut s = Self::default();
        s.merge_bytes(bytes);
        s.to_bytes()
    }

    /// The stored sketch `bytes` with `visitors` added, or `None` when no register grew (the
    /// bytes still hold). The same bytes as merging into a [`Visitors`] and [`Self::to_bytes`],
    /// without building the 4,096 registers: a sparse sketch is patched as its short sorted
    /// list, a dense one in place. (The fold updates thousands of rows per chunk this way.)
    pub fn add_to_bytes<'a>(
        bytes: &[u8],
        visitors: impl IntoIterator<Item = &'a str>,
    ) -> Option<Vec<u8>> {
        let hasher = DefaultHasher::seeded(&SEED.to_be_bytes());
        let hashed = visitors.into_iter().map(|v| {
            let hash = hasher.hash_one(v);
            let index = (hash >> (64 - u32::from(PRECISION))) as usize;
            (index, 1 + hash.trailing_zeros() as u8)
        });
        if let Some((Some(_), triples)) = split(bytes) {
            if !triples.is_empty() {
                // Triples appended by the fold: through the registers (rare: only pair rows
                // get them, and the fold never reads those back).
                let mut s = Self::default();
                s.merge_bytes(bytes);
                let mut grew = false;
                for (index, rank) in hashed {
                    if rank > s.registers[index] {
                        s.registers[index] = rank;
                        grew = true;
                    }
                }
                return grew.then(|| s.to_bytes());
            }
            let rest = &bytes[1..];
            let mut out: Option<Vec<u8>> = None;
            for (index, rank) in hashed {
                let current = out.as_ref().map_or(rest[index], |o| o[1 + index]);
                if rank > current {
                    out.get_or_insert_with(|| bytes.to_vec())[1 + index] = rank;
                }
            }
            return out;
        }
        // Sparse (or empty, or not ours: read as empty, as `merge_bytes` does).
        let mut list: Vec<(u16, u8)> = match bytes.split_first() {
            Some((&SPARSE, rest)) => rest
                .chunks_exact(3)
                .map(|p| (u16::from_le_bytes([p[0], p[1]]), p[2]))
                .filter(|(i, _)| usize::from(*i) < REGISTERS)
                .collect(),
            _ => Vec::new(),
        };
        // Written in index order by `to_bytes`; sorted again when the fold appended triples.
        if !list.is_sorted_by_key(|p| p.0) {
            list.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
            list.dedup_by_key(|p| p.0);
        }
        let mut grew = false;
        for (index, rank) in hashed {
            let index = index as u16;
            match list.binary_search_by_key(&index, |p| p.0) {
                Ok(at) if list[at].1 >= rank => {}
                Ok(at) => {
                    list[at].1 = rank;
                    grew = true;
                }
                Err(at) => {
                    list.insert(at, (index, rank));
                    grew = true;
                }
            }
        }
        if !grew && !bytes.is_empty() {
            return None;
        }
        if list.len() * 3 < REGISTERS {
            let mut out = Vec::with_capacity(1 + list.len() * 3);
            out.push(SPARSE);
            for (i, r) in list {
                out.extend_from_slice(&i.to_le_bytes());
                out.push(r);
            }
            Some(out)
        } else {
            let mut out = vec![0; 1 + REGISTERS];
            out[0] = DENSE;
            for (i, r) in list {
                out[1 + usize::from(i)] = r;
            }
            Some(out)
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let set = self.registers.iter().filter(|r| **r != 0).count();
        if set * 3 < REGISTERS {
            let mut out = Vec::with_capacity(1 + set * 3);
            out.push(SPARSE);
            for (i, r) in self.registers.iter().enumerate() {
                if *r != 0 {
                    out.extend_from_slice(&(i as u16).to_le_bytes());
                    out.push(*r);
                }
            }
            out
        } else {
            let mut out = Vec::with_capacity(1 + REGISTERS);
            out.push(DENSE);
            out.extend_from_slice(&self.registers);
            out
        }
    }

    /// The estimated number of distinct visitors.
    pub fn count(&self) -> i64 {
        if self.registers.iter().all(|r| *r == 0) {
            return 0;
        }
        // Rounded: the crate's `count` truncates, so one visitor came out as 0.9998 → 0.
        self.sketch().raw_count().round() as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_powers_are_the_exact_powers_of_two() {
        for r in 0..=u8::MAX {
            assert_eq!(inverse_power(r), 2f64.powi(-i32::from(r)), "2^-{r}");
        }
    }

    #[test]
    fn merged_sketches_count_the_union_within_the_error() {
        let mut a = Visitors::default();
        let names: Vec<String> = (0..20_000).map(|i| format!("v{i}")).collect();
        a.insert_all(names[..12_000].iter().map(String::as_str));
        let mut b = Visitors::default();
        b.insert_all(names[8_000..].iter().map(String::as_str));
        let mut union = Visitors::default();
        union.merge_bytes(&a.to_bytes());
        union.merge_bytes(&b.to_bytes());
        let n = union.count() as f64;
        assert!((n - 20_000.0).abs() < 20_000.0 * 0.05, "{n}");

        let mut few = Visitors::default();
        few.insert_all(["a", "b", "c", "a"]);
        let bytes = few.to_bytes();
        assert_eq!(bytes.len(), 1 + 3 * 3);
        let mut back = Visitors::default();
        back.merge_bytes(&bytes);
        assert_eq!(back.count(), 3);
        assert_eq!(Visitors::default().count(), 0);
        for n in 1..=50 {
            let mut s = Visitors::default();
            s.insert_all(names[..n].iter().map(String::as_str));
            assert_eq!(s.count(), n as i64, "{n} visitors");
        }
    }

    #[test]
    fn adding_to_stored_bytes_gives_the_bytes_of_a_merge() {
        let names: Vec<String> = (0..3_000).map(|i| format!("w{i}")).collect();
        let mut whole = Visitors::default();
        let mut bytes: Vec<u8> = Vec::new();
        // Batches of growing size take the sketch from empty through sparse to dense.
        let mut at = 0;
        for size in [0, 1, 3, 40, 400, 1_000, 1_556] {
            let batch = &names[at..at + size];
            at += size;
            let grew = whole.insert_all(batch.iter().map(String::as_str));
            match Visitors::add_to_bytes(&bytes, batch.iter().map(String::as_str)) {
                Some(next) => {
                    assert!(grew || bytes.is_empty(), "{size}");
                    bytes = next;
                }
                None => assert!(!grew, "{size}"),
            }
            assert_eq!(bytes, whole.to_bytes(), "after {at} visitors");
        }
        assert_eq!(bytes[0], DENSE);
        // Visitors already counted change nothing, dense or sparse.
        assert_eq!(Visitors::add_to_bytes(&bytes, ["w1", "w2"]), None);
        let mut few = Visitors::default();
        few.insert_all(["a", "b"]);
        assert_eq!(Visitors::add_to_bytes(&few.to_bytes(), ["a"]), None);
    }

    /// Registers of a stored sketch.
    fn registers(bytes: &[u8]) -> Vec<u8> {
        let mut s = Visitors::default();
        s.merge_bytes(bytes);
        s.registers
    }

    #[test]
    fn tails_appended_to_a_stored_sketch_count_as_a_merge() {
        let names: Vec<String> = (0..6_000).map(|i| format!("t{i}")).collect();
        let mut whole = Visitors::default();
        // Appended as the fold does (`visitors || substr(tail, 2)`), from empty to past dense,
        // with repeats (the same visitors again), compacted whenever longer than the bound.
        let mut stored = Visitors::tail(&[]);
        let mut compacted = 0;
        let mut at = 0;
        for size in [1, 2, 40, 400, 1_000, 2_000, 300, 2_257] {
            let batch: Vec<&str> = names[at..at + size]
                .iter()
                .chain(&names[..at.min(50)])
                .map(String::as_str)
                .collect();
            at += size;
            whole.insert_all(batch.iter().copied());
            let entries = Visitors::entries(batch.iter().copied());
            assert!(
                entries.windows(2).all(|w| w[0].0 < w[1].0),
                "one per register"
            );
            stored.extend_from_slice(&Visitors::tail(&entries)[1..]);
            assert_eq!(registers(&stored), whole.registers, "after {at} visitors");
            if stored.len() > COMPACT_ABOVE {
                stored = Visitors::compact(&stored);
                compacted += 1;
                assert_eq!(stored, whole.to_bytes(), "compacted after {at} visitors");
            }
            // Adding to a stored sketch with a tail gives the short form of the union.
            let more = ["x1", "x2", "x3"];
            let mut plus = whole.clone();
            plus.insert_all(more);
            match Visitors::add_to_bytes(&stored, more) {
                Some(b) => assert_eq!(b, plus.to_bytes()),
                None => assert_eq!(registers(&stored), plus.registers),
            }
        }
        assert!(compacted >= 1, "the bound was reached");
        assert_eq!(stored[0], DENSE);
        // A dense sketch with triples after its registers stays readable.
        stored.extend_from_slice(&Visitors::tail(&Visitors::entries(["late"]))[1..]);
        whole.insert_all(["late"]);
        assert_eq!(registers(&stored), whole.registers);
        assert_eq!(Visitors::compact(&stored), whole.to_bytes());
        // Not ours: a dense tag with a length that is no register count plus triples.
        assert!(registers(&[DENSE, 1, 2]).iter().all(|r| *r == 0));
    }

    #[test]
    fn visitors_land_in_the_registers_the_crate_picks() {
        let names: Vec<String> = (0..5_000).map(|i| format!("visitor-{i}")).collect();
        let mut ours = Visitors::default();
        ours.insert_all(names.iter().map(String::as_str));
        let mut theirs = HyperLogLog::seeded(PRECISION, SEED);
        for n in &names {
            theirs.insert(n.as_str());
        }
        assert!(ours.registers.iter().copied().eq(theirs.iter()));
        assert_eq!(ours.count(), theirs.raw_count().round() as i64);
    }
}

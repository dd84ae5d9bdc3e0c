//! Unique visitors as HyperLogLog sketches (the `hyperloglockless` crate): one per rollup row,
//! merged over any range by taking each register's maximum.
//!
//! Precision 12 (4,096 registers): a standard error of about 1.6% of the count (the crate's
//! `error_for_precision(12)`); small sets are near exact. Stored as the non-zero registers
//! (two bytes of index, one of value each) while that is shorter than the 4,096 registers, so
//! an hour with few visitors costs a few bytes.

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

impl Visitors {
    fn sketch(&self) -> HyperLogLog<DefaultHasher> {
        let zeros = self.registers.iter().filter(|r| **r == 0).count();
        let sum: f64 = self
            .registers
            .iter()
            .map(|r| 2f64.powi(-i32::from(*r)))
            .sum();
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
        match bytes.split_first() {
            Some((&DENSE, rest)) if rest.len() == REGISTERS => {
                for (r, x) in self.registers.iter_mut().zip(rest) {
                    *r = (*r).max(*x);
                }
            }
            Some((&SPARSE, rest)) => {
                for pair in rest.chunks_exact(3) {
                    let i = usize::from(u16::from_le_bytes([pair[0], pair[1]]));
                    if let Some(r) = self.registers.get_mut(i) {
                        *r = (*r).max(pair[2]);
                    }
                }
            }
            _ => {}
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

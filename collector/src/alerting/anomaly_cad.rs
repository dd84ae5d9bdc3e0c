//! The Contextual Anomaly Detector, open-source edition (CAD OSE, M. Smirnov 2016, as
//! published in NAB as `contextOSE`), ported from the Python reference
//! (`nab/detectors/context_ose/{cad_ose,context_operator}.py`) with its published parameters.
//!
//! Each value is quantised into 3 bits over `[min, max]`, and each bit becomes a "fact". The
//! detector remembers *contexts*: which facts followed which group of facts (the previous step's
//! facts plus the contexts that were active then, its "neurons"). A value is anomalous when the
//! facts it produces were not predicted and the contexts that should have followed did not
//! (`(1 − share of the expected contexts that came true + share of new contexts) / 2`). After a
//! score of [`BASE_THRESHOLD`] or more, the detector stays silent for `rest_period` steps.
//!
//! Departures from the reference:
//! - semi-contexts are keyed by their facts, not by Python's tuple hash (no collisions);
//! - ties (which active contexts become neurons, the order new contexts are numbered in) are
//!   broken by creation order instead of by Python's tuple hashes;
//! - a value's 3 bits are 6 possible facts, so a semi-context's value facts are a bitmask and
//!   only its neurons are a list; a step visits the left semi-contexts that can be wholly
//!   present (indexed by one of their neurons) and scans them all only on the steps where the
//!   memory may grow (the only steps where partly present ones matter);
//! - the memory is capped at [`MAX_CONTEXTS`]: beyond it, the contexts least recently
//!   activated are forgotten (the reference's memory grows without bound);
//! - a value outside `[min, max]` is clamped to the nearest level (the product's range always
//!   covers its values, see [`OnlineCad`]).

use std::collections::{HashMap, VecDeque};

/// Scores at or above this silence the detector for its rest period (published: 0.75).
pub const BASE_THRESHOLD: f64 = 0.75;
/// The most contexts one detector remembers; beyond it the least recently activated quarter
/// is forgotten, so memory and per-step cost stay bounded on a series that never repeats.
pub const MAX_CONTEXTS: usize = 8_192;
/// The longest left semi-context that may seed a new context (published: 7).
const MAX_LEFT_SEMI_CONTEXT_LEN: u32 = 7;
/// How many active contexts feed the next step as "neurons" (published: 15).
const MAX_ACTIVE_NEURONS: usize = 15;
/// Bits per quantised value (published: 3, i.e. 8 levels).
const NORM_VALUE_BITS: u32 = 3;
const MAX_LEVEL: u32 = (1 << NORM_VALUE_BITS) - 1;

/// Context ids, which are also the neuron facts (stable for the detector's life).
type ContextId = u64;

/// A set of facts: the value facts as a bitmask (bit `2 × i + b` for bit `i` of the level
/// equal to `b`), and neuron facts as sorted context ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
struct FactSet {
    mask: u8,
    neurons: Vec<ContextId>,
}

impl FactSet {
    fn len(&self) -> u32 {
        self.mask.count_ones() + self.neurons.len() as u32
    }

    /// True when every fact of `self` is in `group`.
    fn within(&self, group: &FactSet) -> bool {
        self.mask & !group.mask == 0 && is_subset(&self.neurons, &group.neurons)
    }

    /// `self ∩ group`, written into `out`.
    fn intersect_into(&self, group: &FactSet, out: &mut FactSet) {
        out.mask = self.mask & group.mask;
        out.neurons.clear();
        let (mut i, mut j) = (0, 0);
        let (a, b) = (&self.neurons, &group.neurons);
        while i < a.len() && j < b.len() {
            match a[i].cmp(&b[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    out.neurons.push(a[i]);
                    i += 1;
                    j += 1;
                }
            }
        }
    }
}

fn is_subset(small: &[ContextId], big: &[ContextId]) -> bool {
    let mut j = 0;
    for &x in small {
        while j < big.len() && big[j] < x {
            j += 1;
        }
        if j == big.len() || big[j] != x {
            return false;
        }
        j += 1;
    }
    true
}

#[derive(Debug, Clone)]
struct Context {
    id: ContextId,
    /// Right semi-context: value facts only (a bitmask).
    right: u8,
    /// The right semi-context's creation rank (the reference orders a left's contexts by it).
    right_rank: u8,
    /// Facts this context's left side expected (summed over the steps it was selected).
    selected: u64,
    /// Of those, facts that came.
    matched: u64,
    /// Steps on which all of its right side came.
    activations: u64,
    zero_level: bool,
    /// The step it was last activated (or created): what the memory cap evicts by.
    last_used: u64,
}

#[derive(Debug, Clone)]
struct LeftSemi {
    facts: FactSet,
    /// Ordered by the right semi-context's creation rank.
    contexts: Vec<Context>,
    has_zero_level: bool,
}

/// The context memory (`ContextOperator` in the reference).
#[derive(Debug, Clone, Default)]
struct Memory {
    /// Left semi-contexts in creation order.
    left: Vec<LeftSemi>,
    left_ids: HashMap<FactSet, usize>,
    /// Left semi-contexts by their largest neuron; those without neurons in `plain_lefts`.
    by_neuron: HashMap<ContextId, Vec<usize>>,
    plain_lefts: Vec<usize>,
    /// Creation rank of each right semi-context (by mask; value facts fit in 6 bits), 0 = not yet created.
    right_rank: RightRanks,
    rights: u8,
    contexts: usize,
    next_id: ContextId,
    /// The zero-level context created on this step. The reference initialises it to `False`,
    /// which Python compares equal to context 0, so context 0 is skipped when none was created.
    new_context: ContextId,
    /// Left semi-contexts wholly within the last group crossed (predict), in creation order.
    full: Vec<usize>,
    /// How many left semi-contexts existed when `full` was computed.
    crossed_lefts: usize,
    step: u64,
}

/// Creation rank of each right semi-context, by its mask (value facts fit in 6 bits).
#[derive(Debug, Clone)]
struct RightRanks([u8; 64]);

impl Default for RightRanks {
    fn default() -> Self {
        Self([0; 64])
    }
}

/// A potential new context: (left ∩ group, right ∩ facts).
type Potential = (FactSet, u8);

impl Memory {
    fn index_left(&mut self, slot: usize) {
        match self.left[slot].facts.neurons.last() {
            Some(&n) => self.by_neuron.entry(n).or_default().push(slot),
            None => self.plain_lefts.push(slot),
        }
    }

    /// Stores the context `(left, right)` unless it exists; true when it is new.
    fn store(&mut self, left: &FactSet, right: u8, zero_level: bool) -> bool {
        let slot = match self.left_ids.get(left) {
            Some(&slot) => slot,
            None => {
                let slot = self.left.len();
                self.left.push(LeftSemi {
                    facts: left.clone(),
                    contexts: Vec::new(),
                    has_zero_level: false,
                });
                self.left_ids.insert(left.clone(), slot);
                self.index_left(slot);
                slot
            }
        };
        let rank = match self.right_rank.0[usize::from(right)] {
            0 => {
                self.rights += 1;
                self.right_rank.0[usize::from(right)] = self.rights;
                self.rights
            }
            r => r,
        };
        let semi = &mut self.left[slot];
        match semi.contexts.binary_search_by_key(&rank, |c| c.right_rank) {
            Ok(at) => {
                if zero_level {
                    semi.contexts[at].zero_level = true;
                    semi.has_zero_level = true;
                }
                false
            }
            Err(at) => {
                let id = self.next_id;
                self.next_id += 1;
                semi.contexts.insert(
                    at,
                    Context {
                        id,
                        right,
                        right_rank: rank,
                        selected: 0,
                        matched: 0,
                        activations: 0,
                        zero_level,
                        last_used: self.step,
                    },
                );
                semi.has_zero_level |= zero_level;
                self.contexts += 1;
                if zero_level {
                    self.new_context = id;
                }
                true
            }
        }
    }

    /// Left semi-contexts wholly within `group`, in creation order.
    fn full_lefts(&self, group: &FactSet, out: &mut Vec<usize>) {
        out.clear();
        let plain = self.plain_lefts.iter();
        let keyed = group
            .neurons
            .iter()
            .filter_map(|n| self.by_neuron.get(n))
            .flatten();
        out.extend(
            plain
                .chain(keyed)
                .copied()
                .filter(|&l| self.left[l].facts.within(group)),
        );
        out.sort_unstable();
    }

    /// Scores the previous step's predictions against `facts` (`updateContextsAndGetActive`).
    /// `group` is the previous step's group, the one `full` was crossed with. Returns the active
    /// contexts (activations, id), how many were selected, and the potential new contexts.
    fn observe(
        &mut self,
        group: &FactSet,
        facts: u8,
        may_grow: bool,
        potential: &mut Vec<Potential>,
    ) -> (Vec<(u64, ContextId)>, usize) {
        let mut active = Vec::new();
        let mut selected = 0;
        potential.clear();
        let step = self.step;
        let skip = self.new_context;
        let mut visit = |contexts: &mut Vec<Context>, crossed: &FactSet, full: bool| {
            let crossed_len = crossed.len();
            for c in contexts {
                if c.id == skip {
                    continue;
                }
                let hit = c.right & facts;
                let grows_here = c.zero_level
                    && may_grow
                    && hit != 0
                    && crossed_len <= MAX_LEFT_SEMI_CONTEXT_LEN;
                if full {
                    selected += 1;
                    c.selected += u64::from(c.right.count_ones());
                    if hit != 0 {
                        c.matched += u64::from(hit.count_ones());
                        if hit == c.right {
                            c.activations += 1;
                            c.last_used = step;
                            active.push((c.activations, c.id));
                        } else if grows_here {
                            potential.push((crossed.clone(), hit));
                        }
                    }
                } else if grows_here {
                    potential.push((crossed.clone(), hit));
                }
            }
        };
        if may_grow {
            // Partly present left semi-contexts can seed contexts: visit every one that shares
            // a fact with the group (the reference's crossing), in creation order.
            let mut crossed = FactSet::default();
            for semi in &mut self.left[..self.crossed_lefts] {
                semi.facts.intersect_into(group, &mut crossed);
                if crossed.mask == 0 && crossed.neurons.is_empty() {
                    continue;
                }
                let full = crossed.len() == semi.facts.len();
                if !full && !semi.has_zero_level {
                    continue;
                }
                visit(&mut semi.contexts, &crossed, full);
            }
        } else {
            for &l in &self.full {
                let LeftSemi {
                    facts, contexts, ..
                } = &mut self.left[l];
                visit(contexts, facts, true);
            }
        }
        self.new_context = 0;
        (active, selected)
    }

    /// Stores `potential` and crosses the left side with `group`; returns how many contexts
    /// were new and the value facts predicted for the next step.
    fn predict(&mut self, group: &FactSet, potential: &[Potential]) -> (usize, u8) {
        let added = potential
            .iter()
            .filter(|(l, r)| self.store(l, *r, false))
            .count();
        let mut full = std::mem::take(&mut self.full);
        self.full_lefts(group, &mut full);
        self.full = full;
        self.crossed_lefts = self.left.len();
        let mut best = 0.0;
        let mut predicted = 0u8;
        for &l in &self.full {
            for c in &self.left[l].contexts {
                let weight = if c.selected > 0 {
                    c.matched as f64 / c.selected as f64
                } else {
                    0.0
                };
                if weight > best {
                    best = weight;
                    predicted = c.right;
                } else if weight == best {
                    predicted |= c.right;
                }
            }
        }
        (added, predicted)
    }

    /// Forgets the least recently activated contexts once there are more than
    /// [`MAX_CONTEXTS`], keeping three quarters of the cap, then crosses `group` again.
    fn cap(&mut self, group: &FactSet) {
        if self.contexts <= MAX_CONTEXTS {
            return;
        }
        let mut used: Vec<(u64, ContextId)> = self
            .left
            .iter()
            .flat_map(|s| s.contexts.iter().map(|c| (c.last_used, c.id)))
            .collect();
        let keep = MAX_CONTEXTS * 3 / 4;
        let (_, &mut cutoff, _) = used.select_nth_unstable_by(keep - 1, |a, b| b.cmp(a));
        let mut left = Vec::with_capacity(self.left.len());
        let mut kept = 0;
        for mut semi in std::mem::take(&mut self.left) {
            semi.contexts.retain(|c| (c.last_used, c.id) >= cutoff);
            if !semi.contexts.is_empty() {
                semi.has_zero_level = semi.contexts.iter().any(|c| c.zero_level);
                kept += semi.contexts.len();
                left.push(semi);
            }
        }
        self.left = left;
        self.contexts = kept;
        self.left_ids.clear();
        self.by_neuron.clear();
        self.plain_lefts.clear();
        for slot in 0..self.left.len() {
            self.left_ids.insert(self.left[slot].facts.clone(), slot);
            self.index_left(slot);
        }
        let mut full = std::mem::take(&mut self.full);
        self.full_lefts(group, &mut full);
        self.full = full;
        self.crossed_lefts = self.left.len();
    }
}

/// CAD OSE over one series, value by value.
#[derive(Debug, Clone)]
pub struct ContextOse {
    min: f64,
    step: f64,
    rest_period: usize,
    memory: Memory,
    left_group: FactSet,
    predicted: u8,
    potential: Vec<Potential>,
    /// The last `rest_period` raw scores, oldest first; starts as `[1.0]` like the reference,
    /// so the first `rest_period` values score 0.
    recent: VecDeque<f64>,
}

impl ContextOse {
    /// A detector for values in `[min, max]` that rests `rest_period` steps after an alarm.
    pub fn new(min: f64, max: f64, rest_period: usize) -> Self {
        let max_bin = f64::from(MAX_LEVEL);
        let range = if max - min == 0.0 { max_bin } else { max - min };
        let mut recent = VecDeque::with_capacity(rest_period + 1);
        recent.push_back(1.0);
        Self {
            min,
            step: range / max_bin,
            rest_period,
            memory: Memory::default(),
            left_group: FactSet::default(),
            predicted: 0,
            potential: Vec::new(),
            recent,
        }
    }

    /// The value's facts as a mask: bit `2 × i + b` for bit `i` of its level equal to `b`.
    fn facts(&self, value: f64) -> u8 {
        // The reference truncates toward zero.
        let level = ((value - self.min) / self.step)
            .trunc()
            .clamp(0.0, f64::from(MAX_LEVEL)) as u32;
        (0..NORM_VALUE_BITS).fold(0, |mask, i| mask | 1 << (2 * i + ((level >> i) & 1)))
    }

    /// How many contexts it remembers (at most [`MAX_CONTEXTS`] between steps).
    pub fn contexts(&self) -> usize {
        self.memory.contexts
    }

    /// Scores `value` (in [0, 1]) and learns from it.
    pub fn score(&mut self, value: f64) -> f64 {
        let facts = self.facts(value);
        let surprised = facts & !self.predicted != 0;
        let (predicted, active_share, new_share) = self.step(facts);
        self.predicted = predicted;
        let current = if surprised {
            (1.0 - active_share + new_share) / 2.0
        } else {
            0.0
        };
        let resting = self.recent.iter().any(|&s| s >= BASE_THRESHOLD);
        // With no rest period the reference's `history[-0:]` is its whole history, whose
        // initial 1.0 silences it for good; `recent` then keeps that 1.0.
        if self.rest_period > 0 {
            if self.recent.len() >= self.rest_period {
                self.recent.pop_front();
            }
            self.recent.push_back(current);
        }
        if resting { 0.0 } else { current }
    }

    fn step(&mut self, sensed: u8) -> (u8, f64, f64) {
        let memory = &mut self.memory;
        memory.step += 1;
        let group_before = std::mem::take(&mut self.left_group);
        let has_group = group_before.mask != 0 || !group_before.neurons.is_empty();
        let grows = has_group && memory.store(&group_before, sensed, true);
        let mut potential = std::mem::take(&mut self.potential);
        let (mut active, selected) = memory.observe(&group_before, sensed, grows, &mut potential);
        // Distinct (left, right) pairs among the zero-level one and the potential ones.
        let unique = if grows {
            let mut pairs: Vec<(&FactSet, u8)> = potential.iter().map(|(l, r)| (l, *r)).collect();
            pairs.push((&group_before, sensed));
            pairs.sort_unstable_by(|a, b| {
                (a.1, a.0.mask, &a.0.neurons).cmp(&(b.1, b.0.mask, &b.0.neurons))
            });
            pairs.dedup();
            pairs.len()
        } else {
            0
        };
        let active_share = if selected > 0 {
            active.len() as f64 / selected as f64
        } else {
            0.0
        };
        // The most often active contexts become the next step's neurons (ties: the newest, as
        // the port always did).
        active.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
        let mut neurons: Vec<ContextId> = active
            .iter()
            .take(MAX_ACTIVE_NEURONS)
            .map(|&(_, id)| id)
            .collect();
        neurons.sort_unstable();
        neurons.dedup();
        let group = FactSet {
            mask: sensed,
            neurons,
        };
        let (mut added, predicted) = memory.predict(&group, &potential);
        self.potential = potential;
        memory.cap(&group);
        self.left_group = group;
        added += usize::from(grows);
        let new_share = if grows && unique > 0 {
            added as f64 / unique as f64
        } else {
            0.0
        };
        (predicted, active_share, new_share)
    }
}

/// Buckets contextOSE stays silent after an alarm in the product. NAB rests a fifth of its
/// probationary period, which depends on the file's length; the product has no length, so the
/// rest was chosen by nested leave-one-category-out cross-validation on NAB's development half
/// among 30, 60, 90, 120 and 150 (every fold picked 60; docs/alerting-quality.md).
pub const REST_BUCKETS: usize = 60;
/// A new extreme rebuilds the detector only when it leaves the range by more than this share
/// of it (one quantisation level of [`MAX_LEVEL`]); a smaller excess is clamped to the edge
/// level, which is at most one level off.
pub const RANGE_TOLERANCE: f64 = 1.0 / MAX_LEVEL as f64;
/// Replay steps a detector earns per bucket fed, capped at this many windows: a rebuild
/// replays the window, so rebuilds cost at most this many steps per bucket on average.
pub const REPLAY_CREDIT: usize = 2;
/// The score threshold that the product's default sensitivity maps to: the median of the
/// thresholds that NAB's leave-one-category-out cross-validation chooses for [`OnlineCad`]
/// (standard profile), each optimised without the category it is scored on.
pub const DEFAULT_THRESHOLD: f64 = 0.7628;

/// The score threshold for a rule's `sensitivity`: proportional to it, so the default
/// sensitivity ([`crate::alerting::anomaly::DEFAULT_SENSITIVITY`]) is [`DEFAULT_THRESHOLD`]
/// and lower fires more. Above `DEFAULT_SENSITIVITY / DEFAULT_THRESHOLD` (about 1.59) nothing
/// fires, since scores are at most 1.
pub fn threshold_for(sensitivity: f64) -> f64 {
    DEFAULT_THRESHOLD * sensitivity / crate::alerting::anomaly::DEFAULT_SENSITIVITY
}

/// A bucket's score in an anomaly rule: contextOSE's score `cad`, or, when the bucket is below
/// the seasonal baseline, the baseline's raw score `seasonal` (signed yardsticks off it, see
/// [`crate::alerting::anomaly::assess`]; `None` while it cannot judge) mapped onto [0, 1) by
/// [`crate::alerting::anomaly::unit_score`] if that is larger. contextOSE knows sequences, not
/// the clock, so it misses a drop to levels the series visits every night; the baseline
/// catches it when far off it (at [`DEFAULT_THRESHOLD`], about 3.2 yardsticks below). Only
/// drops: counting rises too cost NAB cross-validated score (docs/alerting-quality.md).
pub fn ensemble_score(cad: f64, seasonal: Option<f64>) -> f64 {
    match seasonal {
        Some(s) if s < 0.0 => cad.max(crate::alerting::anomaly::unit_score(s)),
        _ => cad,
    }
}

/// What a product rule runs: contextOSE fed one closed bucket at a time, quantising over the
/// range of the values it has seen (no look-ahead). A value that leaves that range by more
/// than [`RANGE_TOLERANCE`] widens it, and the detector is rebuilt over the new range by
/// replaying the last `window` values (the history a rule keeps), as long as it has earned
/// the replay ([`REPLAY_CREDIT`]); otherwise the value is clamped to the edge level until it
/// has. Memory: `window` values and at most [`MAX_CONTEXTS`] contexts.
#[derive(Debug, Clone)]
pub struct OnlineCad {
    window: usize,
    recent: VecDeque<f64>,
    /// The smallest and largest value fed so far.
    seen: Option<(f64, f64)>,
    /// The range the detector quantises over.
    range: (f64, f64),
    detector: ContextOse,
    rebuilds: u64,
    /// Replay steps it may still spend on rebuilds.
    credit: usize,
}

impl OnlineCad {
    /// A detector with nothing seen that replays up to `window` values when it rebuilds.
    pub fn new(window: usize) -> Self {
        Self {
            window: window.max(1),
            recent: VecDeque::new(),
            seen: None,
            range: (0.0, 0.0),
            detector: ContextOse::new(0.0, 0.0, REST_BUCKETS),
            rebuilds: 0,
            credit: 0,
        }
    }

    /// A rule's detector created from its stored `history` (oldest first, its last `window`
    /// values kept): quantised over the history's range and fed it once, with a full replay
    /// credit. All of it is in the past of the next bucket, so this looks nothing ahead.
    pub fn from_history(history: &[f64], window: usize) -> Self {
        let mut d = Self::new(window);
        let history = &history[history.len().saturating_sub(d.window)..];
        let finite = history.iter().copied().filter(|v| v.is_finite());
        let Some((lo, hi)) = finite.fold(None, |range: Option<(f64, f64)>, v| {
            Some(range.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
        }) else {
            return d;
        };
        d.seen = Some((lo, hi));
        d.range = (lo, hi);
        d.detector = ContextOse::new(lo, hi, REST_BUCKETS);
        for &v in history.iter().filter(|v| v.is_finite()) {
            d.detector.score(v);
            d.recent.push_back(v);
        }
        d.credit = REPLAY_CREDIT * d.window;
        d
    }

    /// The last values fed (at most `window`), oldest first.
    pub fn recent(&self) -> impl ExactSizeIterator<Item = &f64> + DoubleEndedIterator {
        self.recent.iter()
    }

    /// How many times a new extreme made it replay its window.
    pub fn rebuilds(&self) -> u64 {
        self.rebuilds
    }

    /// How many contexts it remembers (at most [`MAX_CONTEXTS`]).
    pub fn contexts(&self) -> usize {
        self.detector.contexts()
    }

    /// Scores the next bucket's value in [0, 1] and learns from it. A non-finite value is
    /// neither scored nor learnt (0).
    pub fn score(&mut self, value: f64) -> f64 {
        if !value.is_finite() {
            return 0.0;
        }
        let (lo, hi) = match self.seen {
            Some((lo, hi)) => (lo.min(value), hi.max(value)),
            None => (value, value),
        };
        self.seen = Some((lo, hi));
        self.credit = (self.credit + REPLAY_CREDIT).min(REPLAY_CREDIT * self.window);
        let tolerance = (self.range.1 - self.range.0) * RANGE_TOLERANCE;
        let stale = lo < self.range.0 - tolerance || hi > self.range.1 + tolerance;
        if self.recent.is_empty() || (stale && self.credit >= self.recent.len()) {
            self.range = (lo, hi);
            self.detector = ContextOse::new(lo, hi, REST_BUCKETS);
            for &v in &self.recent {
                self.detector.score(v);
            }
            self.credit -= self.recent.len();
            self.rebuilds += u64::from(!self.recent.is_empty());
        }
        let score = self.detector.score(value);
        if self.recent.len() == self.window {
            self.recent.pop_front();
        }
        self.recent.push_back(value);
        score
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scores of `values` fed one by one to a fresh detector over `[0, 7]`.
    fn run(values: &[f64], rest_period: usize) -> Vec<f64> {
        let mut cad = ContextOse::new(0.0, 7.0, rest_period);
        values.iter().map(|&v| cad.score(v)).collect()
    }

    /// A fixed pseudo-random stream (splitmix64) in [0, 1).
    fn noise(seed: u64, n: usize) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = s;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
            })
            .collect()
    }

    #[test]
    fn values_become_three_bit_facts_over_the_range() {
        let cad = ContextOse::new(10.0, 80.0, 1);
        // Bit i of the level sets mask bit 2i (bit clear) or 2i + 1 (bit set).
        assert_eq!(cad.facts(10.0), 0b01_01_01);
        assert_eq!(cad.facts(80.0), 0b10_10_10);
        // Level 5 of 7 (0b101), truncated like the reference.
        assert_eq!(cad.facts(65.9), 0b10_01_10);
        // Outside the range: the edge levels.
        assert_eq!(cad.facts(-5.0), cad.facts(10.0));
        assert_eq!(cad.facts(1e9), cad.facts(80.0));
    }

    #[test]
    fn nothing_scores_during_the_first_rest_period() {
        let values: Vec<f64> = (0..40).map(|i| f64::from(i * 5 % 8)).collect();
        let scores = run(&values, 30);
        assert!(scores[..30].iter().all(|&s| s == 0.0), "{scores:?}");
        // The same values do surprise a detector that rests for a single step.
        let eager = run(&values, 1);
        assert!(eager[1..30].iter().any(|&s| s > 0.0), "{eager:?}");
    }

    #[test]
    fn a_learnt_rhythm_stops_surprising_it_and_a_break_in_it_does() {
        let rhythm = [0.0, 2.0, 7.0, 5.0, 1.0, 3.0];
        let mut values: Vec<f64> = rhythm.iter().copied().cycle().take(600).collect();
        let learnt = run(&values, 1);
        assert!(
            learnt[300..].iter().all(|&s| s == 0.0),
            "the rhythm still surprises it: {:?}",
            &learnt[300..]
        );
        // The same rhythm with one value out of place.
        values.push(4.0);
        let broken = run(&values, 1);
        assert!(broken[600] >= BASE_THRESHOLD, "{}", broken[600]);
    }

    #[test]
    fn it_rests_after_an_alarm() {
        let rhythm = [0.0, 2.0, 7.0, 5.0, 1.0, 3.0];
        let mut values: Vec<f64> = rhythm.iter().copied().cycle().take(600).collect();
        // Two breaks, three steps apart: the second falls in the rest period of the first.
        values.extend([4.0, 6.0, 6.0, 4.0]);
        let rested = run(&values, 10);
        assert!(rested[600] >= BASE_THRESHOLD, "{}", rested[600]);
        assert_eq!(rested[603], 0.0);
        let eager = run(&values, 1);
        assert!(eager[603] > 0.0, "{}", eager[603]);
    }

    #[test]
    fn the_same_series_always_scores_the_same() {
        let values: Vec<f64> = (0..500).map(|i| f64::from(i * 7919 % 8)).collect();
        assert_eq!(run(&values, 20), run(&values, 20));
        let values: Vec<f64> = noise(7, 800).iter().map(|v| v * 100.0).collect();
        let online = |v: &[f64]| {
            let mut d = OnlineCad::new(300);
            v.iter().map(|&x| d.score(x)).collect::<Vec<_>>()
        };
        assert_eq!(online(&values), online(&values));
    }

    #[test]
    fn the_memory_stays_under_its_cap_on_a_series_that_never_repeats() {
        // Uniform noise over the whole range makes new contexts on almost every step.
        let values: Vec<f64> = noise(3, 2_500).iter().map(|v| v * 8.0).collect();
        let mut cad = ContextOse::new(0.0, 7.0, 1);
        let mut largest = 0;
        for v in values {
            cad.score(v);
            largest = largest.max(cad.contexts());
        }
        assert!(largest <= MAX_CONTEXTS, "{largest} contexts");
        assert!(
            largest > MAX_CONTEXTS * 3 / 4,
            "the cap was never reached ({largest}), so this tests nothing"
        );
    }

    /// An hourly-looking rhythm of period 24 with a little noise, around 100.
    fn daily(n: usize, seed: u64) -> Vec<f64> {
        let jitter = noise(seed, n);
        (0..n)
            .map(|i| {
                let phase = (i % 24) as f64 / 24.0 * std::f64::consts::TAU;
                100.0 + 40.0 * phase.sin() + 4.0 * jitter[i]
            })
            .collect()
    }

    #[test]
    fn fed_bucket_by_bucket_it_equals_a_replay_of_the_same_buckets() {
        // The first two buckets span the range, so the detector fed one bucket at a time
        // quantises over the same range as one rebuilt from the stored buckets (a restart).
        let mut values = vec![60.0, 150.0];
        values.extend(daily(400, 11));
        let window = 1_000;
        let mut fed = OnlineCad::new(window);
        let scores: Vec<f64> = values.iter().map(|&v| fed.score(v)).collect();
        let mut replayed = OnlineCad::from_history(&values[..401], window);
        assert_eq!(replayed.score(values[401]), scores[401]);
        for next in [300.0, 120.0, 20.0] {
            assert_eq!(fed.score(next), replayed.score(next));
        }
        // A restart replays only the window: it is contextOSE over those buckets and that range.
        let tail = &values[values.len() - 300..];
        let mut restarted = OnlineCad::from_history(&values, 300);
        let (lo, hi) = tail
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let mut reference = ContextOse::new(lo, hi, REST_BUCKETS);
        for &v in tail {
            reference.score(v);
        }
        assert_eq!(restarted.score(110.0), reference.score(110.0));
    }

    #[test]
    fn a_new_extreme_rebuilds_over_the_range_seen_and_rebuilds_are_paid_for() {
        let mut d = OnlineCad::from_history(&daily(300, 5), 500);
        let before = d.rebuilds();
        // Within one level of the range: clamped, no rebuild.
        d.score(140.0 + 4.0);
        assert_eq!(d.rebuilds(), before);
        // Far above: rebuilt over the wider range.
        d.score(400.0);
        assert_eq!(d.rebuilds(), before + 1);
        assert_eq!(d.range.1, 400.0);
        // A series that sets a new record on every bucket rebuilds at most once per
        // window / REPLAY_CREDIT buckets once the window is full.
        let mut rising = OnlineCad::new(100);
        for i in 0..1_000 {
            rising.score(f64::from(i));
        }
        let steps_replayed_at_most = REPLAY_CREDIT * 1_000 + REPLAY_CREDIT * 100;
        assert!(
            rising.rebuilds() as usize * 100 <= steps_replayed_at_most,
            "{} rebuilds",
            rising.rebuilds()
        );
        assert!(rising.rebuilds() > 10, "it never caught up with the range");
    }

    #[test]
    fn a_spike_and_a_level_shift_fire_and_steady_noise_does_not() {
        let history = daily(24 * 30, 21);
        let mut steady = OnlineCad::from_history(&history, 1_200);
        let later = daily(24 * 37, 21);
        let false_alarms = later[24 * 30..]
            .iter()
            .filter(|&&v| steady.score(v) >= DEFAULT_THRESHOLD)
            .count();
        assert_eq!(false_alarms, 0, "a week of the same rhythm fired");

        let mut spiked = OnlineCad::from_history(&history, 1_200);
        assert!(spiked.score(320.0) >= DEFAULT_THRESHOLD);

        let mut shifted = OnlineCad::from_history(&history, 1_200);
        let fired_within = later[24 * 30..]
            .iter()
            .map(|v| v * 3.0)
            .position(|v| shifted.score(v) >= DEFAULT_THRESHOLD);
        assert!(
            fired_within.is_some_and(|h| h < 6),
            "× 3 fired after {fired_within:?} buckets"
        );
    }
}

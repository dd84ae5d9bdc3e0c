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
//! Departures from the reference, none of which changes what is computed:
//! - semi-contexts are keyed by their facts, not by Python's tuple hash (no collisions);
//! - the top [`MAX_ACTIVE_NEURONS`] active contexts are chosen by activation count, ties broken
//!   by creation order instead of by Python's tuple hashes;
//! - crossing visits only the semi-contexts that hold one of the facts, in creation order,
//!   instead of every semi-context (those holding none are skipped by the reference too).

use std::collections::{BTreeMap, HashMap, HashSet};

/// Scores at or above this silence the detector for its rest period (published: 0.75).
pub const BASE_THRESHOLD: f64 = 0.75;
/// The longest left semi-context that may seed a new context (published: 7).
const MAX_LEFT_SEMI_CONTEXT_LEN: usize = 7;
/// How many active contexts feed the next step as "neurons" (published: 15).
const MAX_ACTIVE_NEURONS: usize = 15;
/// Bits per quantised value (published: 3, i.e. 8 levels).
const NORM_VALUE_BITS: u32 = 3;
/// Facts of the value's bits are numbered from here, the neurons' from [`NEURON_BASE`].
const SENSOR_BASE: u64 = 65_536;
const NEURON_BASE: u64 = 1 << 31;

type Facts = Vec<u64>;

#[derive(Debug)]
struct LeftSemi {
    len: usize,
    crossed: Facts,
    /// Right semi-context id → context id.
    contexts: BTreeMap<usize, usize>,
}

#[derive(Debug)]
struct RightSemi {
    facts: Facts,
    crossed: Facts,
}

#[derive(Debug)]
struct Context {
    /// Facts this context's left side expected (summed over the steps it was selected).
    selected: u64,
    /// Of those, facts that came.
    matched: u64,
    /// Steps on which all of its right side came.
    activations: u64,
    right: usize,
    zero_level: bool,
}

/// The context memory (`ContextOperator` in the reference).
#[derive(Debug, Default)]
struct Memory {
    left_ids: HashMap<Facts, usize>,
    right_ids: HashMap<Facts, usize>,
    left: Vec<LeftSemi>,
    right: Vec<RightSemi>,
    left_by_fact: HashMap<u64, Vec<usize>>,
    right_by_fact: HashMap<u64, Vec<usize>>,
    crossed_left: Vec<usize>,
    crossed_right: Vec<usize>,
    contexts: Vec<Context>,
    /// The zero-level context created on this step. The reference initialises it to `False`,
    /// which Python compares equal to context 0, so context 0 is skipped when none was created.
    new_context: usize,
}

impl Memory {
    /// Stores the context `(left, right)` unless it exists; true when it is new.
    fn store(&mut self, left: &[u64], right: &[u64], zero_level: bool) -> bool {
        let next = self.left.len();
        let l = *self.left_ids.entry(left.to_vec()).or_insert(next);
        if l == next {
            self.left.push(LeftSemi {
                len: left.len(),
                crossed: Vec::new(),
                contexts: BTreeMap::new(),
            });
            for &f in left {
                self.left_by_fact.entry(f).or_default().push(l);
            }
        }
        let next = self.right.len();
        let r = *self.right_ids.entry(right.to_vec()).or_insert(next);
        if r == next {
            self.right.push(RightSemi {
                facts: right.to_vec(),
                crossed: Vec::new(),
            });
            for &f in right {
                self.right_by_fact.entry(f).or_default().push(r);
            }
        }
        let next = self.contexts.len();
        let id = *self.left[l].contexts.entry(r).or_insert(next);
        if id == next {
            self.contexts.push(Context {
                selected: 0,
                matched: 0,
                activations: 0,
                right: r,
                zero_level,
            });
            if zero_level {
                self.new_context = id;
            }
            true
        } else {
            if zero_level {
                self.contexts[id].zero_level = true;
            }
            false
        }
    }

    /// Marks which of `facts` every semi-context of one side holds; returns those holding any,
    /// in creation order.
    fn cross(&mut self, left_side: bool, facts: &[u64]) {
        let (previous, by_fact) = if left_side {
            (std::mem::take(&mut self.crossed_left), &self.left_by_fact)
        } else {
            (std::mem::take(&mut self.crossed_right), &self.right_by_fact)
        };
        let mut touched = Vec::new();
        for id in previous {
            if left_side {
                self.left[id].crossed.clear();
            } else {
                self.right[id].crossed.clear();
            }
        }
        for &f in facts {
            for &id in by_fact.get(&f).map_or(&[][..], Vec::as_slice) {
                if left_side {
                    self.left[id].crossed.push(f);
                } else {
                    self.right[id].crossed.push(f);
                }
                touched.push(id);
            }
        }
        touched.sort_unstable();
        touched.dedup();
        if left_side {
            self.crossed_left = touched;
        } else {
            self.crossed_right = touched;
        }
    }

    /// The right crossing and `updateContextsAndGetActive`: scores the previous step's
    /// predictions against `facts`. Returns the active contexts, how many were selected, and
    /// the potential new contexts.
    #[allow(clippy::type_complexity)]
    fn observe(
        &mut self,
        facts: &[u64],
        may_grow: bool,
    ) -> (Vec<usize>, usize, Vec<(Facts, Facts)>) {
        self.cross(false, facts);
        let mut active = Vec::new();
        let mut selected = 0;
        let mut potential = Vec::new();
        for &l in &self.crossed_left {
            let left = &self.left[l];
            let full = left.len == left.crossed.len();
            for (&r, &id) in &left.contexts {
                if id == self.new_context {
                    continue;
                }
                let right = &self.right[r];
                let hit = right.crossed.len();
                let context = &mut self.contexts[id];
                if full {
                    selected += 1;
                    context.selected += right.facts.len() as u64;
                    if hit > 0 {
                        context.matched += hit as u64;
                        if hit == right.facts.len() {
                            context.activations += 1;
                            active.push(id);
                        } else if context.zero_level
                            && may_grow
                            && left.crossed.len() <= MAX_LEFT_SEMI_CONTEXT_LEN
                        {
                            potential.push((left.crossed.clone(), right.crossed.clone()));
                        }
                    }
                } else if context.zero_level
                    && may_grow
                    && hit > 0
                    && left.crossed.len() <= MAX_LEFT_SEMI_CONTEXT_LEN
                {
                    potential.push((left.crossed.clone(), right.crossed.clone()));
                }
            }
        }
        self.new_context = 0;
        (active, selected, potential)
    }

    /// Stores `potential` and crosses the left side with `facts`; returns how many contexts
    /// were new and the facts predicted for the next step.
    fn predict(&mut self, facts: &[u64], potential: &[(Facts, Facts)]) -> (usize, Vec<u64>) {
        let added = potential
            .iter()
            .filter(|(l, r)| self.store(l, r, false))
            .count();
        self.cross(true, facts);
        let mut best = 0.0;
        let mut predicting: Vec<usize> = Vec::new();
        for &l in &self.crossed_left {
            let left = &self.left[l];
            if left.len != left.crossed.len() {
                continue;
            }
            for &id in left.contexts.values() {
                let c = &self.contexts[id];
                let weight = if c.selected > 0 {
                    c.matched as f64 / c.selected as f64
                } else {
                    0.0
                };
                if weight > best {
                    best = weight;
                    predicting.clear();
                    predicting.push(id);
                } else if weight == best {
                    predicting.push(id);
                }
            }
        }
        let mut predicted: Vec<u64> = predicting
            .iter()
            .flat_map(|&id| self.right[self.contexts[id].right].facts.iter().copied())
            .collect();
        predicted.sort_unstable();
        predicted.dedup();
        (added, predicted)
    }
}

/// CAD OSE over one series, value by value.
#[derive(Debug)]
pub struct ContextOse {
    min: f64,
    step: f64,
    rest_period: usize,
    memory: Memory,
    left_group: Facts,
    predicted: Facts,
    /// The last `rest_period` raw scores, oldest first; starts as `[1.0]` like the reference,
    /// so the first `rest_period` values score 0.
    recent: std::collections::VecDeque<f64>,
}

impl ContextOse {
    /// A detector for values in `[min, max]` that rests `rest_period` steps after an alarm.
    pub fn new(min: f64, max: f64, rest_period: usize) -> Self {
        let max_bin = f64::from((1u32 << NORM_VALUE_BITS) - 1);
        let range = if max - min == 0.0 { max_bin } else { max - min };
        let mut recent = std::collections::VecDeque::with_capacity(rest_period + 1);
        recent.push_back(1.0);
        Self {
            min,
            step: range / max_bin,
            rest_period,
            memory: Memory::default(),
            left_group: Vec::new(),
            predicted: Vec::new(),
            recent,
        }
    }

    /// The value's facts: one per bit of its level, `SENSOR_BASE + 2 × bit index + bit`.
    fn facts(&self, value: f64) -> Facts {
        // The reference truncates toward zero; values outside [min, max] never reach here in
        // the product (its range always covers the value).
        let level = ((value - self.min) / self.step).trunc().max(0.0) as u64;
        let bits = (u64::BITS - level.leading_zeros()).max(NORM_VALUE_BITS);
        (0..u64::from(bits))
            .map(|i| SENSOR_BASE + 2 * i + ((level >> i) & 1))
            .collect()
    }

    /// Scores `value` (in [0, 1]) and learns from it.
    pub fn score(&mut self, value: f64) -> f64 {
        let facts = self.facts(value);
        let surprised = facts
            .iter()
            .any(|f| self.predicted.binary_search(f).is_err());
        let (predicted, active_share, new_share) = self.step(&facts);
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

    fn step(&mut self, facts: &[u64]) -> (Facts, f64, f64) {
        let mut sensed = facts.to_vec();
        sensed.sort_unstable();
        sensed.dedup();
        let mut unique: HashSet<(Facts, Facts)> = HashSet::new();
        let grows = if !self.left_group.is_empty() && !sensed.is_empty() {
            let new = self.memory.store(&self.left_group, &sensed, true);
            unique.insert((self.left_group.clone(), sensed.clone()));
            new
        } else {
            false
        };
        let (active, selected, potential) = self.memory.observe(&sensed, grows);
        unique.extend(potential.iter().cloned());
        let active_share = if selected > 0 {
            active.len() as f64 / selected as f64
        } else {
            0.0
        };
        // The most often active contexts become the next step's neurons.
        let mut ranked: Vec<(u64, usize)> = active
            .iter()
            .map(|&id| (self.memory.contexts[id].activations, id))
            .collect();
        ranked.sort_unstable();
        let neurons = ranked
            .iter()
            .rev()
            .take(MAX_ACTIVE_NEURONS)
            .map(|&(_, id)| NEURON_BASE + id as u64);
        let mut group: Facts = sensed.iter().copied().chain(neurons).collect();
        group.sort_unstable();
        group.dedup();
        let (mut added, predicted) = self.memory.predict(&group, &potential);
        self.left_group = group;
        added += usize::from(grows);
        let new_share = if grows && !unique.is_empty() {
            added as f64 / unique.len() as f64
        } else {
            0.0
        };
        (predicted, active_share, new_share)
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

    #[test]
    fn values_become_three_bit_facts_over_the_range() {
        let cad = ContextOse::new(10.0, 80.0, 1);
        let f = |v| cad.facts(v);
        assert_eq!(f(10.0), vec![SENSOR_BASE, SENSOR_BASE + 2, SENSOR_BASE + 4]);
        assert_eq!(
            f(80.0),
            vec![SENSOR_BASE + 1, SENSOR_BASE + 3, SENSOR_BASE + 5]
        );
        // Level 5 of 7 (0b101), truncated like the reference.
        assert_eq!(
            f(65.9),
            vec![SENSOR_BASE + 1, SENSOR_BASE + 2, SENSOR_BASE + 5]
        );
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
    }
}

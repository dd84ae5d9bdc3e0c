//! The funnel's steps for every user at once: step 1 from one grouped read, each next step
//! from the user's rollup rows after the previous one, settled from the events where a day
//! began before it.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::reads::{self, Bind, Reader};
use super::{Parts, USERS_PER_READ};
use crate::domain::ProjectId;
use crate::store::{DAY_MS, StoreError, Who};

/// One user's occurrences of one step's event within one part of the range: a whole UTC day
/// (from the rollup) or the range's part of an edge day (from the events).
#[derive(Debug, Clone, Copy)]
struct Span {
    first: i64,
    last: i64,
    /// A rollup day's second occurrence (`i64::MAX`: none), when known (migration 0054).
    second: Option<i64>,
}

/// A step's event: its timestamp and, once read from the events, its `seq` (the scan's order
/// among events of the same millisecond). Without a seq it is the first of its millisecond.
#[derive(Debug, Clone, Copy)]
struct At {
    ts: i64,
    seq: Option<i64>,
}

/// A user who reached the step being read past.
#[derive(Debug)]
pub(super) struct Progress {
    /// Step 1's time plus the window: the last moment a step counts.
    deadline: i64,
    /// The step reached (with `unread_until`, the one before it).
    at: At,
    /// The earliest two of the next step's spans that end at or after `at` and begin by the
    /// deadline: the first holds the next occurrence, unless it began before `at` (then its
    /// events say when) and has none after it (then the second does).
    spans: [Option<Span>; 2],
    /// For a user whose first span began before `at`: the first of the step's events after
    /// `at`'s millisecond, and the seqs of those in `at`'s millisecond.
    after: Option<(i64, i64)>,
    ties: Vec<i64>,
    /// Set when this step was reached on `at`'s day after `at`, by this time, at an
    /// occurrence not read yet (`at` stays the previous step's): read only if the next step's
    /// first span could begin before it.
    unread_until: Option<i64>,
}

impl Progress {
    /// A repeated step (`view,view`): when the step reached is its day's first occurrence,
    /// the next one is that day's second, which the rollup keeps, so no events are read.
    /// Narrows the day's span to it, or drops the span when it has none within the window;
    /// false when no span is left. A second in `at`'s millisecond leaves the span beginning at
    /// `at`, which the events then settle by `seq`, as for any other step.
    fn step_past_itself(&mut self) -> bool {
        let Some(first) = self.spans[0] else {
            return false;
        };
        let Some(second) = first.second else {
            return true;
        };
        // `seq: None` is the first of its millisecond, so `at` is the day's first occurrence.
        if first.first != self.at.ts || self.at.seq.is_some() {
            return true;
        }
        self.narrow_to_second(first, second);
        self.spans[0].is_some()
    }

    /// A day that began before the step reached and whose second occurrence comes after it
    /// (the rollup keeps it, migration 0054): every later occurrence is at or after that
    /// second one, so it is the next, the first of its millisecond, and no events are read
    /// for it. Narrows the day's span to it, or drops the span when it is past the deadline.
    /// A second in `at`'s millisecond or before it leaves the span to the events.
    fn skip_to_second(&mut self) {
        let Some(first) = self.spans[0] else {
            return;
        };
        let Some(second) = first.second else {
            return;
        };
        if !(first.first < self.at.ts && self.at.ts < second) {
            return;
        }
        self.narrow_to_second(first, second);
    }

    /// The next occurrence is `first`'s day's `second`: the first span begins there, or is
    /// dropped when that is past the deadline.
    fn narrow_to_second(&mut self, first: Span, second: i64) {
        if second <= self.deadline {
            self.spans[0] = Some(Span {
                first: second,
                last: first.last,
                second: None,
            });
        } else {
            self.spans = [self.spans[1], None];
        }
    }

    /// Keeps `span` among the two earliest if it can hold the next step.
    fn offer(&mut self, span: Span) {
        if span.last < self.at.ts || span.first > self.deadline {
            return;
        }
        match self.spans {
            [None, _] => self.spans[0] = Some(span),
            [Some(a), _] if span.first < a.first => self.spans = [Some(span), Some(a)],
            [Some(_), None] => self.spans[1] = Some(span),
            [Some(_), Some(b)] if span.first < b.first => self.spans[1] = Some(span),
            _ => {}
        }
    }
}

/// Every user with a step-1 event in the range, at its first one.
pub(super) async fn first_step(
    reader: &mut Reader,
    project: ProjectId,
    parts: &Parts,
    name: &str,
    window_ms: i64,
    include_bots: bool,
) -> Result<BTreeMap<String, Progress>, StoreError> {
    let mut users: BTreeMap<String, Progress> = BTreeMap::new();
    let mut add = |user: &str, first: i64, _last: i64, _: Option<i64>| match users.get_mut(user) {
        Some(p) if p.at.ts <= first => {}
        Some(p) => {
            p.at.ts = first;
            p.deadline = first.saturating_add(window_ms);
        }
        None => {
            users.insert(
                user.to_owned(),
                Progress {
                    deadline: first.saturating_add(window_ms),
                    at: At {
                        ts: first,
                        seq: None,
                    },
                    spans: [None, None],
                    after: None,
                    ties: Vec::new(),
                    unread_until: None,
                },
            );
        }
    };
    let (lo, hi) = parts.days;
    // Each table on its own (`add` keeps a user's earliest): both are read in key order
    // without a sort, where their union would be sorted again for every statement.
    for &who in Who::counted(include_bots) {
        let first_step_days = reads::first_step_days_sql(who);
        // [`USERS_PER_READ`] users a statement: bounds what one statement gathers.
        let mut after = Some(String::new());
        while let Some(from) = after.take().filter(|_| lo < hi) {
            let binds = [
                Bind::Int(project),
                Bind::Text(name),
                Bind::Int(lo),
                Bind::Int(hi),
                Bind::Text(&from),
                Bind::Int(USERS_PER_READ as i64),
            ];
            let (mut read, mut last) = (0, String::new());
            reader
                .each_gathered(&first_step_days, &binds, |user, first, l, _| {
                    read += 1;
                    if user > last.as_str() {
                        last.clear();
                        last.push_str(user);
                    }
                    add(user, first, l, None);
                })
                .await?;
            after = (read == USERS_PER_READ).then_some(last);
        }
    }
    let sql = reads::part_day_sql(reader.backend(), name, include_bots);
    for (lo, hi) in parts.edges() {
        let binds = [
            Bind::Int(project),
            Bind::Text(name),
            Bind::Int(lo),
            Bind::Int(hi),
        ];
        reader.each_gathered(&sql, &binds, &mut add).await?;
    }
    Ok(users)
}

/// A step after the first, the one before it, and the one before that (none for step 2).
pub(super) struct Step<'a> {
    pub(super) project: ProjectId,
    pub(super) before: Option<&'a str>,
    pub(super) previous: &'a str,
    pub(super) name: &'a str,
    /// Bot events count too (their rollup rows and events).
    pub(super) include_bots: bool,
}

impl Step<'_> {
    /// Moves each of `users` to their first occurrence of this step after the previous one,
    /// within their window; takes out those without one.
    pub(super) async fn advance(
        &self,
        reader: &mut Reader,
        parts: &Parts,
        users: &mut BTreeMap<String, Progress>,
    ) -> Result<(), StoreError> {
        for p in users.values_mut() {
            p.spans = [None, None];
        }
        self.read_spans(reader, parts, users).await?;
        users.retain(|_, p| p.spans[0].is_some());
        self.resolve_previous(reader, users).await?;
        // `at` is exact now (resolve_previous settled the previous step's time where it
        // mattered; elsewhere this step's first span begins after it anyway).
        for p in users.values_mut() {
            p.skip_to_second();
        }
        users.retain(|_, p| p.spans[0].is_some());
        if self.name == self.previous {
            users.retain(|_, p| p.step_past_itself());
        }
        // The users whose first span began before their previous step and ends after it within
        // the window reached this step (on that day, at the latest at the span's end): when,
        // the next step's spans say whether it matters.
        for p in users.values_mut() {
            let Some(first) = p.spans[0] else { continue };
            if first.first <= p.at.ts && p.at.ts < first.last && first.last <= p.deadline {
                p.unread_until = Some(first.last);
            }
        }
        let interval = |p: &Progress| {
            let s = p.spans[0].filter(|s| s.first <= p.at.ts && p.unread_until.is_none())?;
            Some((p.at.ts, s.last.min(p.deadline)))
        };
        read_after(
            reader,
            self.project,
            self.name,
            self.previous,
            users,
            interval,
            self.include_bots,
        )
        .await?;
        users.retain(|_, p| {
            let Some(first) = p.spans[0] else {
                return false;
            };
            if p.unread_until.is_some() {
                return true;
            }
            p.at = if first.first > p.at.ts {
                At {
                    ts: first.first,
                    seq: None,
                }
            } else if let Some((ts, seq)) = p.after {
                At { ts, seq: Some(seq) }
            } else if first.last > p.at.ts && first.last <= p.deadline {
                // Nothing after it in the events, yet the day has a later occurrence within
                // the window: its raw events have expired (rollups outlive them); it counts
                // at the day's last one.
                At {
                    ts: first.last,
                    seq: None,
                }
            } else if let Some(next) = p.spans[1] {
                At {
                    ts: next.first,
                    seq: None,
                }
            } else {
                return false;
            };
            true
        });
        Ok(())
    }

    /// Settles when the users whose previous step was left unread (in `[at, unread_until]`)
    /// reached it, where this step's first span could begin before that: from the previous
    /// step's events over those intervals. The others keep `at` as a lower bound, which
    /// changes nothing: their next span begins after the previous step whenever it was.
    async fn resolve_previous(
        &self,
        reader: &mut Reader,
        users: &mut BTreeMap<String, Progress>,
    ) -> Result<(), StoreError> {
        for p in users.values_mut() {
            if let (Some(until), Some(first)) = (p.unread_until, p.spans[0])
                && first.first > until
            {
                p.unread_until = None;
            }
        }
        let Some(before) = self.before else {
            return Ok(());
        };
        let interval = |p: &Progress| p.unread_until.map(|until| (p.at.ts, until));
        read_after(
            reader,
            self.project,
            self.previous,
            before,
            users,
            interval,
            self.include_bots,
        )
        .await?;
        for p in users.values_mut() {
            let Some(until) = p.unread_until.take() else {
                continue;
            };
            // The previous step's day had an occurrence after `at` by `until`: the first one
            // in the events, else (its raw events expired) the day's last.
            p.at = match p.after {
                Some((ts, seq)) => At { ts, seq: Some(seq) },
                None => At {
                    ts: until,
                    seq: None,
                },
            };
            // This step's first span, on that same day, may now be over before it.
            if p.spans[0].is_some_and(|s| s.last < p.at.ts) {
                p.spans = [p.spans[1], None];
            }
        }
        users.retain(|_, p| p.spans[0].is_some());
        Ok(())
    }

    /// Offers each user their spans of this step: rollup days from their step's day to their
    /// deadline's, then the range's edge parts.
    async fn read_spans(
        &self,
        reader: &mut Reader,
        parts: &Parts,
        users: &mut BTreeMap<String, Progress>,
    ) -> Result<(), StoreError> {
        let (lo, hi) = parts.days;
        let mut after = Bound::Unbounded;
        while let Some((json, last)) = (lo < hi).then(|| users_json(users, &after)).flatten() {
            after = Bound::Excluded(last);
            let binds = [
                Bind::Int(self.project),
                Bind::Text(&json),
                Bind::Text(self.name),
                Bind::Int(lo),
                Bind::Int(hi),
            ];
            let sql = reads::next_days_sql(reader.backend(), self.include_bots);
            reader
                .each_gathered(&sql, &binds, |user, first, last, second| {
                    if let Some(p) = users.get_mut(user) {
                        p.offer(Span {
                            first,
                            last,
                            second,
                        });
                    }
                })
                .await?;
        }
        let sql = reads::part_day_sql(reader.backend(), self.name, self.include_bots);
        for (lo, hi) in parts.edges() {
            let binds = [
                Bind::Int(self.project),
                Bind::Text(self.name),
                Bind::Int(lo),
                Bind::Int(hi),
            ];
            reader
                .each_gathered(&sql, &binds, |user, first, last, _| {
                    if let Some(p) = users.get_mut(user) {
                        p.offer(Span {
                            first,
                            last,
                            second: None,
                        });
                    }
                })
                .await?;
        }
        Ok(())
    }
}

/// For the users with an `interval` `[at, until]`: reads the events of step `name` over those
/// intervals (merged where they overlap) into `after`, the first after `at`'s millisecond or
/// in it after `at` (by seq; `previous` is the step `at` is an occurrence of).
async fn read_after(
    reader: &mut Reader,
    project: ProjectId,
    name: &str,
    previous: &str,
    users: &mut BTreeMap<String, Progress>,
    interval: impl Fn(&Progress) -> Option<(i64, i64)>,
    include_bots: bool,
) -> Result<(), StoreError> {
    for p in users.values_mut() {
        p.after = None;
        p.ties.clear();
    }
    let mut intervals: Vec<(i64, i64)> = users.values().filter_map(&interval).collect();
    intervals.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::new();
    for (lo, hi) in intervals {
        match merged.last_mut() {
            Some(m) if lo <= m.1 => m.1 = m.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    let sql = reads::events_sql(reader.backend(), name, include_bots);
    for (lo, hi) in merged {
        let binds = [
            Bind::Int(project),
            Bind::Text(name),
            Bind::Int(lo),
            Bind::Int(hi),
        ];
        reader
            .each(&sql, &binds, |user, ts, seq, _| {
                let Some(p) = users.get_mut(user) else { return };
                let Some((from, until)) = interval(p) else {
                    return;
                };
                if ts < from || ts > until {
                    return;
                }
                if ts == from {
                    p.ties.push(seq);
                } else if p.after.is_none_or(|a| (ts, seq) < a) {
                    p.after = Some((ts, seq));
                }
            })
            .await?;
    }
    // Events in the previous step's millisecond follow it only when stored after it.
    let tied: Vec<String> = users
        .iter()
        .filter(|(_, p)| !p.ties.is_empty())
        .map(|(u, _)| u.clone())
        .collect();
    let sql = reads::first_in_millisecond_sql(reader.backend(), previous, include_bots);
    for user in tied {
        let Some(p) = users.get_mut(&user) else {
            continue;
        };
        let seq = match p.at.seq {
            Some(seq) => seq,
            None => {
                // The first of the previous step's events in its millisecond. Not found:
                // its raw events have expired; take it as the last there.
                let mut seq = i64::MAX;
                let binds = [
                    Bind::Int(project),
                    Bind::Text(previous),
                    Bind::Int(p.at.ts),
                    Bind::Text(&user),
                ];
                reader.each(&sql, &binds, |_, _, s, _| seq = s).await?;
                seq
            }
        };
        if let Some(&tie) = p.ties.iter().filter(|&&s| s > seq).min() {
            p.after = Some((p.at.ts, tie));
        }
    }
    Ok(())
}

/// The next [`USERS_PER_READ`] of `users` after `after` as the JSON array a statement binds,
/// `[user, day of the step reached, its time, deadline]` each, and the last of them.
fn users_json(
    users: &BTreeMap<String, Progress>,
    after: &Bound<String>,
) -> Option<(String, String)> {
    let mut last = None;
    let batch: Vec<serde_json::Value> = users
        .range((after.clone(), Bound::Unbounded))
        .take(USERS_PER_READ)
        .map(|(user, p)| {
            last = Some(user);
            let t = p.at.ts;
            serde_json::json!([user, t - t.rem_euclid(DAY_MS), t, p.deadline])
        })
        .collect();
    Some((serde_json::Value::from(batch).to_string(), last?.clone()))
}

//! Tracked properties (docs/architecture/analytics-at-scale.md, "Tracked properties"): the keys
//! a project rolls up by value, per (event, UTC hour), alone and in pairs, so that Explore answers
//! "one filter and a group-by" on them from `rollups_props_hourly` instead of raw events.
//!
//! Who counts an event for a key: ingest, for the events stored after the key's `end_seq` (the
//! project's newest seq when tracking started); the backfill, for the events up to it. A pair of
//! keys is counted by the backfill of the later-tracked one ([`owner`]). The boundary holds
//! because the settings change that starts tracking waits for the ingest commits in flight:
//! SQLite has one writer; on PostgreSQL each ingest commit holds a shared advisory lock of its
//! projects from its first statement, and the change takes it exclusively.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use sqlx::Row;

use super::{DAY_MS, HOUR_MS, Store, StoreError};
use crate::analytics::property_texts;
use crate::domain::ProjectId;

/// Most keys one project tracks.
pub const MAX_TRACKED_PROPERTIES: usize = 8;
/// Longest tracked key, in characters.
pub const MAX_TRACKED_KEY_CHARS: usize = 200;
/// Most distinct values one (project, event, key, UTC day) keeps; past it the day is capped and
/// Explore reads raw events for ranges that touch it.
pub const MAX_TRACKED_VALUES: i64 = 1_000;
/// Longest value the rollup keeps, in bytes of its text; a longer one caps its day like the
/// value cap does (the rollup never holds a cut value that would group apart from the scan).
pub const MAX_TRACKED_VALUE_BYTES: usize = 200;
/// Events read per backfill transaction (each holds the SQLite writer while it runs).
pub const PROPS_BACKFILL_CHUNK: i64 = 5_000;
/// `value_b` of the rows that count the events without a value for `key_a`.
pub(crate) const MISSING: &str = "(none)";
/// Advisory lock space of a project's tracked keys (PostgreSQL): ingest commits take it shared,
/// a settings change exclusively.
pub(crate) const LOCK_SPACE: i32 = 0x5052_4f50;

/// The advisory lock key of a project in [`LOCK_SPACE`].
pub(crate) fn lock_key(project: i64) -> i32 {
    (project & 0x7fff_ffff) as i32
}

/// One tracked key and its backfill cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedKey {
    pub key: String,
    /// The first stored event (seq) the backfill has not read yet.
    pub next_seq: i64,
    /// The project's newest seq when tracking started: ingest counts the events after it.
    pub end_seq: i64,
    /// Greater for a key tracked later (among the project's tracked keys).
    pub generation: i64,
}

impl TrackedKey {
    /// Whether the rollup holds every stored event for this key.
    pub fn ready(&self) -> bool {
        self.next_seq > self.end_seq
    }

    /// Whether event `seq` is counted in this key's rows (ingest did, or the backfill has).
    pub(crate) fn holds(&self, seq: i64) -> bool {
        seq > self.end_seq || seq < self.next_seq
    }
}

/// Whose backfill counts the pair rows of `a` and `b` for the events stored before both were
/// tracked: the later-tracked key. Its backfill starts after the other key was tracked, so it
/// meets the other key in every chunk; `end_seq` alone can tie (no event between two changes).
pub(crate) fn owner<'k>(a: &'k TrackedKey, b: &'k TrackedKey) -> &'k TrackedKey {
    if (a.end_seq, a.generation) > (b.end_seq, b.generation) {
        a
    } else {
        b
    }
}

/// `(project, key_a, key_b, event, hour, value_a, value_b)`: the primary key's order.
pub(crate) type RowKey = (i64, String, String, String, i64, String, String);
/// `(project, key, event, day)`.
pub(crate) type DayKey = (i64, String, String, i64);

/// One commit's (or backfill chunk's, or deletion's) sums for `rollups_props_hourly`, and the
/// values met per day for the value cap.
#[derive(Debug, Default)]
pub struct PropCounts {
    pub(crate) rows: BTreeMap<RowKey, i64>,
    pub(crate) values: BTreeMap<DayKey, BTreeSet<String>>,
    /// Days that met a value over [`MAX_TRACKED_VALUE_BYTES`].
    pub(crate) too_long: BTreeSet<DayKey>,
}

impl PropCounts {
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.too_long.is_empty()
    }

    /// Counts one non-bot event `delta` times (-1: a deletion) under each key of `singles`
    /// (its value, or [`MISSING`]) and each pair of `pairs` (`a < b`, both with values).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add(
        &mut self,
        project: i64,
        name: &str,
        ts: i64,
        body: &str,
        singles: &[&str],
        pairs: &[(&str, &str)],
        delta: i64,
    ) {
        let tally = Tally::new(project, singles, pairs);
        let values = property_texts(body, &tally.keys);
        let values: Vec<Option<&str>> = values.iter().map(|v| v.as_deref()).collect();
        tally.count(self, name, ts - ts.rem_euclid(HOUR_MS), &values, delta);
    }

    /// The days that met values (or a too long one), in key order.
    pub(crate) fn days(&self) -> BTreeSet<&DayKey> {
        self.values.keys().chain(&self.too_long).collect()
    }
}

/// Events of one project counted under the same keys, collapsed by (event, hour, values)
/// as they come (a lookup per event, values borrowed from the bodies), then turned into rows
/// once per distinct combination: what keeps ingest's cost per event small.
pub(crate) struct Tally<'a> {
    project: i64,
    /// Every key of `singles` and `pairs`, sorted.
    keys: Vec<&'a str>,
    singles: Vec<usize>,
    pairs: Vec<(usize, usize)>,
    combos: HashMap<Combo<'a>, i64>,
}

/// `(rollup name, hour, each key's value)`.
type Combo<'a> = (Cow<'a, str>, i64, Vec<Option<Cow<'a, str>>>);

impl<'a> Tally<'a> {
    pub(crate) fn new(project: i64, singles: &[&'a str], pairs: &[(&'a str, &'a str)]) -> Self {
        let mut keys: Vec<&str> = singles.to_vec();
        keys.extend(pairs.iter().flat_map(|&(a, b)| [a, b]));
        keys.sort_unstable();
        keys.dedup();
        let at = |k: &str| keys.binary_search(&k).unwrap_or_default();
        let singles = singles.iter().map(|k| at(k)).collect();
        let pairs = pairs.iter().map(|(a, b)| (at(a), at(b))).collect();
        Self {
            project,
            keys,
            singles,
            pairs,
            combos: HashMap::new(),
        }
    }

    /// One non-bot event: its rollup name, time and stored JSON.
    pub(crate) fn add(&mut self, name: Cow<'a, str>, ts: i64, body: &'a str) {
        if self.keys.is_empty() {
            return;
        }
        let values = property_texts(body, &self.keys);
        *self
            .combos
            .entry((name, ts - ts.rem_euclid(HOUR_MS), values))
            .or_default() += 1;
    }

    /// Adds the collapsed events to `counts`.
    pub(crate) fn finish(self, counts: &mut PropCounts) {
        for ((name, hour, values), n) in &self.combos {
            let values: Vec<Option<&str>> = values.iter().map(|v| v.as_deref()).collect();
            self.count(counts, name, *hour, &values, *n);
        }
    }

    /// `n` events of `name` in `hour` whose keys have `values` (in `keys` order).
    fn count(&self, c: &mut PropCounts, name: &str, hour: i64, values: &[Option<&str>], n: i64) {
        let fits = |v: &str| v.len() <= MAX_TRACKED_VALUE_BYTES;
        let day = hour - hour.rem_euclid(DAY_MS);
        let project = self.project;
        let row = |a: &str, b: &str, va: &str, vb: &str| -> RowKey {
            (
                project,
                a.to_owned(),
                b.to_owned(),
                name.to_owned(),
                hour,
                va.to_owned(),
                vb.to_owned(),
            )
        };
        for &i in &self.singles {
            let k = self.keys[i];
            match values[i] {
                None => *c.rows.entry(row(k, "", "", MISSING)).or_default() += n,
                Some(v) if fits(v) => {
                    *c.rows.entry(row(k, "", v, "")).or_default() += n;
                    if n > 0 {
                        c.values
                            .entry((project, k.to_owned(), name.to_owned(), day))
                            .or_default()
                            .insert(v.to_owned());
                    }
                }
                Some(_) => {
                    if n > 0 {
                        c.too_long
                            .insert((project, k.to_owned(), name.to_owned(), day));
                    }
                }
            }
        }
        for &(a, b) in &self.pairs {
            if let (Some(va), Some(vb)) = (values[a], values[b])
                && fits(va)
                && fits(vb)
            {
                *c.rows
                    .entry(row(self.keys[a], self.keys[b], va, vb))
                    .or_default() += n;
            }
        }
    }
}

/// The rollup name of a message (`super::rollup_name`), borrowed for a track event.
pub(crate) fn rollup_name_of(m: &crate::domain::Message) -> Cow<'_, str> {
    match (&m.event, m.kind) {
        (Some(e), crate::domain::MessageType::Track) => Cow::Borrowed(e),
        _ => Cow::Owned(super::rollup_name(m)),
    }
}

/// The keys a project's events are counted under alone, and the pairs (`a < b`).
pub(crate) type KeyPlan<'k> = (Vec<&'k str>, Vec<(&'k str, &'k str)>);

/// The singles and pairs ingest counts for a project tracking `keys`: every key, every pair.
pub(crate) fn all_pairs(keys: &[String]) -> KeyPlan<'_> {
    let mut singles: Vec<&str> = keys.iter().map(String::as_str).collect();
    singles.sort_unstable();
    let mut pairs = Vec::new();
    for (i, a) in singles.iter().enumerate() {
        for b in &singles[i + 1..] {
            pairs.push((*a, *b));
        }
    }
    (singles, pairs)
}

/// The pairs a backfill of `key` adds: with each other tracked key it owns the pair of.
pub(crate) fn owned_pairs<'k>(
    key: &'k TrackedKey,
    all: &'k [TrackedKey],
) -> Vec<(&'k str, &'k str)> {
    all.iter()
        .filter(|o| o.key != key.key && owner(key, o).key == key.key)
        .map(|o| {
            if key.key < o.key {
                (key.key.as_str(), o.key.as_str())
            } else {
                (o.key.as_str(), key.key.as_str())
            }
        })
        .collect()
}

/// The singles and pairs event `seq` is counted under, for a deletion to take it out.
pub(crate) fn held_by(seq: i64, all: &[TrackedKey]) -> (Vec<&str>, Vec<(&str, &str)>) {
    let singles = all
        .iter()
        .filter(|k| k.holds(seq))
        .map(|k| k.key.as_str())
        .collect();
    let mut pairs = Vec::new();
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            if owner(a, b).holds(seq) {
                pairs.push(if a.key < b.key {
                    (a.key.as_str(), b.key.as_str())
                } else {
                    (b.key.as_str(), a.key.as_str())
                });
            }
        }
    }
    (singles, pairs)
}

/// Takes a deletion's counts (negative) out of `rollups_props_hourly` in the deletion's
/// transaction, dropping rows that reach 0. A macro: the same statements on both backends.
macro_rules! decrement_props {
    ($tx:expr, $counts:expr) => {{
        let counts: &$crate::store::props::PropCounts = $counts;
        for ((p, ka, kb, e, hour, va, vb), n) in &counts.rows {
            sqlx::query(
                "UPDATE rollups_props_hourly SET events = events + $1
                 WHERE project_id = $2 AND key_a = $3 AND key_b = $4 AND event = $5
                   AND hour = $6 AND value_a = $7 AND value_b = $8",
            )
            .bind(n)
            .bind(p)
            .bind(ka)
            .bind(kb)
            .bind(e)
            .bind(hour)
            .bind(va)
            .bind(vb)
            .execute(&mut *$tx)
            .await?;
            sqlx::query(
                "DELETE FROM rollups_props_hourly
                 WHERE project_id = $1 AND key_a = $2 AND key_b = $3 AND event = $4
                   AND hour = $5 AND value_a = $6 AND value_b = $7 AND events <= 0",
            )
            .bind(p)
            .bind(ka)
            .bind(kb)
            .bind(e)
            .bind(hour)
            .bind(va)
            .bind(vb)
            .execute(&mut *$tx)
            .await?;
        }
    }};
}
pub(crate) use decrement_props;

/// Reads a project's tracked keys on `$conn` (`$lock`: a row lock clause or "").
macro_rules! tracked_on {
    ($conn:expr, $project:expr, $lock:expr) => {{
        let sql = format!(
            "SELECT key, next_seq, end_seq, generation FROM tracked_properties
             WHERE project_id = $1 ORDER BY key {}",
            $lock
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind($project)
            .fetch_all(&mut *$conn)
            .await?;
        rows.iter()
            .map(|r| {
                Ok($crate::store::props::TrackedKey {
                    key: r.try_get(0)?,
                    next_seq: r.try_get(1)?,
                    end_seq: r.try_get(2)?,
                    generation: r.try_get(3)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?
    }};
}
pub(crate) use tracked_on;

/// What the dashboard's rollup read of one key pair returns: `(hour, value_a, value_b, events)`.
pub type PropRow = (i64, String, String, i64);

impl Store {
    /// The project's tracked keys, in key order.
    pub async fn tracked_properties(
        &self,
        project: ProjectId,
    ) -> Result<Vec<TrackedKey>, StoreError> {
        match self {
            Store::Sqlite(s) => {
                let mut conn = s.read_pool().acquire().await?;
                Ok(tracked_on!(conn, project, ""))
            }
            Store::Postgres(p) => {
                let mut conn = p.read_pool().acquire().await?;
                Ok(tracked_on!(conn, project, ""))
            }
        }
    }

    /// Makes `keys` the project's tracked keys: a key no longer listed loses its rows, a new
    /// one starts counting (ingest: the events stored from now on; maintenance backfills the
    /// stored ones). Returns whether any key was added.
    pub async fn set_tracked_properties(
        &self,
        project: ProjectId,
        keys: &[String],
    ) -> Result<bool, StoreError> {
        macro_rules! change {
            ($tx:expr) => {{
                let old = tracked_on!($tx, project, "");
                let mut added = false;
                for k in old.iter().filter(|k| !keys.contains(&k.key)) {
                    for sql in [
                        "DELETE FROM tracked_properties WHERE project_id = $1 AND key = $2",
                        "DELETE FROM rollups_props_hourly WHERE project_id = $1 AND key_a = $2",
                        "DELETE FROM rollups_props_hourly WHERE project_id = $1 AND key_b = $2",
                        "DELETE FROM tracked_property_values WHERE project_id = $1 AND key = $2",
                        "DELETE FROM tracked_property_days WHERE project_id = $1 AND key = $2",
                    ] {
                        sqlx::query(sql)
                            .bind(project)
                            .bind(&k.key)
                            .execute(&mut *$tx)
                            .await?;
                    }
                }
                for k in keys.iter().filter(|k| !old.iter().any(|o| &o.key == *k)) {
                    // Every event stored so far is the backfill's; every later one, ingest's.
                    sqlx::query(
                        "INSERT INTO tracked_properties
                             (project_id, key, next_seq, end_seq, generation)
                         SELECT $1, $2, 0, COALESCE(MAX(seq), -1),
                                COALESCE((SELECT MAX(generation) FROM tracked_properties
                                          WHERE project_id = $1), 0) + 1
                         FROM events WHERE project_id = $1",
                    )
                    .bind(project)
                    .bind(k)
                    .execute(&mut *$tx)
                    .await?;
                    added = true;
                }
                added
            }};
        }
        match self {
            Store::Sqlite(s) => {
                // The writer: no ingest commit runs while this transaction holds it.
                let mut tx = s.write_pool().begin().await?;
                let added = change!(tx);
                tx.commit().await?;
                Ok(added)
            }
            Store::Postgres(p) => {
                let mut tx = p.write_pool().begin().await?;
                // Waits for the ingest commits of the project in flight; later ones wait for
                // this one and then count the new keys.
                sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
                    .bind(LOCK_SPACE)
                    .bind(lock_key(project))
                    .execute(&mut *tx)
                    .await?;
                let added = change!(tx);
                tx.commit().await?;
                Ok(added)
            }
        }
    }

    /// Whether any of `keys` is capped on a UTC day in `[from_day, to_day]` (for `events`, or
    /// any event when `None`).
    pub async fn props_capped(
        &self,
        project: ProjectId,
        keys: &[&str],
        events: Option<&str>,
        from_day: i64,
        to_day: i64,
    ) -> Result<bool, StoreError> {
        with_db!(self, read_pool, |pool| {
            for k in keys {
                let capped: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM tracked_property_days
                         WHERE project_id = $1 AND key = $2 AND day >= $3 AND day <= $4
                           AND ($5 = '' OR event = $5) AND capped LIMIT 1) AS c",
                )
                .bind(project)
                .bind(k)
                .bind(from_day)
                .bind(to_day)
                .bind(events.unwrap_or(""))
                .fetch_one(pool)
                .await?;
                if capped > 0 {
                    return Ok(true);
                }
            }
            Ok(false)
        })
    }

    /// The rows of `(key_a, key_b)` for `events` in hours `[from, to)`, summed over the events,
    /// narrowed to `value_a` / `value_b` when given.
    #[allow(clippy::too_many_arguments)]
    pub async fn props_rows(
        &self,
        project: ProjectId,
        key_a: &str,
        key_b: &str,
        events: &[String],
        from: i64,
        to: i64,
        value_a: Option<&str>,
        value_b: Option<&str>,
    ) -> Result<Vec<PropRow>, StoreError> {
        let mut out = Vec::new();
        with_db!(self, read_pool, |pool| {
            // One index range per event: the key leads with (project, key_a, key_b, event, hour).
            for e in events {
                let rows = sqlx::query(
                    "SELECT hour, value_a, value_b, events FROM rollups_props_hourly
                     WHERE project_id = $1 AND key_a = $2 AND key_b = $3 AND event = $4
                       AND hour >= $5 AND hour < $6
                       AND ($7 = '' OR value_a = $8) AND ($9 = '' OR value_b = $10)",
                )
                .bind(project)
                .bind(key_a)
                .bind(key_b)
                .bind(e)
                .bind(from)
                .bind(to)
                .bind(if value_a.is_some() { "y" } else { "" })
                .bind(value_a.unwrap_or(""))
                .bind(if value_b.is_some() { "y" } else { "" })
                .bind(value_b.unwrap_or(""))
                .fetch_all(pool)
                .await?;
                for r in &rows {
                    out.push((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?));
                }
            }
            Ok::<_, StoreError>(())
        })?;
        Ok(out)
    }

    /// Adds one chunk of stored events to the rollup of a key being backfilled. Returns whether
    /// any work is left.
    pub async fn backfill_props(&self) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.backfill_props().await,
            Store::Postgres(p) => p.backfill_props().await,
        }
    }
}

/// What deleting `rows` takes out of the project's rollup: each event under the keys and pairs
/// that counted it (a key still being backfilled holds only the events its cursor passed).
pub(super) fn deletion_counts(
    project: i64,
    rows: &[super::persons::Removed],
    keys: &[TrackedKey],
) -> PropCounts {
    let mut counts = PropCounts::default();
    if keys.is_empty() {
        return counts;
    }
    for r in rows.iter().filter(|r| !r.bot) {
        if let Some(body) = &r.body {
            let (singles, pairs) = held_by(r.seq, keys);
            counts.add(project, &r.name, r.timestamp, body, &singles, &pairs, -1);
        }
    }
    counts
}

/// Sums one backfill chunk of `key` (events `(seq, name, ts, body, bot)` in seq order).
pub(crate) fn backfill_counts(
    project: i64,
    key: &TrackedKey,
    all: &[TrackedKey],
    events: &[(i64, String, i64, String, bool)],
) -> PropCounts {
    let pairs = owned_pairs(key, all);
    let mut tally = Tally::new(project, &[key.key.as_str()], &pairs);
    for (_, name, ts, body, bot) in events {
        if !bot {
            tally.add(Cow::Borrowed(name), *ts, body);
        }
    }
    let mut counts = PropCounts::default();
    tally.finish(&mut counts);
    counts
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    type Counted = HashMap<(i64, String, String), i64>;

    fn count(counted: &mut Counted, s: i64, a: &str, b: &str, n: i64) {
        *counted.entry((s, a.to_owned(), b.to_owned())).or_default() += n;
    }

    /// A model of who counts what: events arrive (ingest counts every tracked key and pair),
    /// keys are tracked (cursor at the newest seq) and dropped (their counts go), backfills move
    /// cursors in chunks, deletions take out what [`held_by`] says. At every step each live
    /// event must be counted exactly once under each tracked key and each pair of them whose
    /// backfill has passed it, and never under anything else.
    #[test]
    fn every_event_counts_once_per_key_and_pair() {
        const NAMES: [&str; 4] = ["a", "b", "c", "d"];
        for seed in 0..200 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut keys: Vec<TrackedKey> = Vec::new();
            let mut live: Vec<i64> = Vec::new();
            let mut seq = 0;
            // (event seq, key_a, key_b) → times counted.
            let mut counted = Counted::new();
            for _ in 0..60 {
                match rng.random_range(0..5) {
                    0 | 1 => {
                        seq += 1;
                        live.push(seq);
                        let names: Vec<String> = keys.iter().map(|k| k.key.clone()).collect();
                        let (singles, pairs) = all_pairs(&names);
                        singles
                            .iter()
                            .for_each(|k| count(&mut counted, seq, k, "", 1));
                        pairs
                            .iter()
                            .for_each(|(a, b)| count(&mut counted, seq, a, b, 1));
                    }
                    2 => {
                        let name = NAMES[rng.random_range(0..NAMES.len())];
                        if let Some(i) = keys.iter().position(|k| k.key == name) {
                            keys.remove(i);
                            counted.retain(|(_, a, b), _| a != name && b != name);
                        } else {
                            let generation =
                                keys.iter().map(|k| k.generation).max().unwrap_or(0) + 1;
                            keys.push(TrackedKey {
                                key: name.to_owned(),
                                next_seq: 0,
                                end_seq: seq,
                                generation,
                            });
                            keys.sort_by(|x, y| x.key.cmp(&y.key));
                        }
                    }
                    3 => {
                        if let Some(i) = keys.iter().position(|k| !k.ready()) {
                            let chunk = rng.random_range(1..4);
                            let this = keys[i].clone();
                            let read: Vec<i64> = live
                                .iter()
                                .copied()
                                .filter(|&s| s >= this.next_seq && s <= this.end_seq)
                                .take(chunk)
                                .collect();
                            let pairs = owned_pairs(&this, &keys);
                            for &s in &read {
                                count(&mut counted, s, &this.key, "", 1);
                                pairs
                                    .iter()
                                    .for_each(|(a, b)| count(&mut counted, s, a, b, 1));
                            }
                            keys[i].next_seq = match read.last() {
                                Some(&l) if read.len() == chunk => l + 1,
                                _ => this.end_seq + 1,
                            };
                        }
                    }
                    _ => {
                        if !live.is_empty() {
                            let s = live.remove(rng.random_range(0..live.len()));
                            let (singles, pairs) = held_by(s, &keys);
                            singles
                                .iter()
                                .for_each(|k| count(&mut counted, s, k, "", -1));
                            pairs
                                .iter()
                                .for_each(|(a, b)| count(&mut counted, s, a, b, -1));
                        }
                    }
                }
                let mut want: HashMap<(i64, String, String), i64> = HashMap::new();
                for &s in &live {
                    for (i, a) in keys.iter().enumerate() {
                        if a.holds(s) {
                            want.insert((s, a.key.clone(), String::new()), 1);
                        }
                        for b in &keys[i + 1..] {
                            if owner(a, b).holds(s) {
                                want.insert((s, a.key.clone(), b.key.clone()), 1);
                            }
                        }
                    }
                }
                counted.retain(|_, n| *n != 0);
                assert_eq!(counted, want, "seed {seed}");
                // Once every key is ready, every live event counts under everything.
                if keys.iter().all(TrackedKey::ready) {
                    let n = keys.len();
                    assert_eq!(want.len(), live.len() * (n + n * n.saturating_sub(1) / 2));
                }
            }
        }
    }
}

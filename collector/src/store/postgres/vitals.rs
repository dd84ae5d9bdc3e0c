//! The PostgreSQL ingest commit's Web Vitals rollups (`crate::store::vitals`). Sketches cannot
//! be added in SQL, so each touched row is made to exist, locked, merged in Rust and written
//! back: three statements per table, rows taken in key order so that concurrent commits (and
//! replicas) lock them in the same order and cannot deadlock.

use std::collections::{HashMap, HashSet};

use sqlx::{AssertSqlSafe, PgConnection, Row};

use crate::domain::sketch::Sketch;
use crate::store::vitals::{VitalAcc, VitalRollups};
use crate::store::{PendingBatch, StoreError};

/// Adds the Web Vitals among the messages of `batches` this commit stored (`is_new`).
pub(super) async fn add(
    tx: &mut PgConnection,
    batches: &[PendingBatch],
    is_new: &[Vec<bool>],
) -> Result<(), StoreError> {
    let mut r = VitalRollups::default();
    for (project, m) in super::ingest::stored(batches, is_new) {
        r.add(project, m);
    }
    write(tx, r).await
}

/// One table's rows to merge: key columns and the samples to add.
#[derive(Default)]
struct Rows {
    project: Vec<i64>,
    metric: Vec<&'static str>,
    time: Vec<i64>,
    bot: Vec<i64>,
    path: Vec<String>,
    add: Vec<VitalAcc>,
}

/// Merges `r` into the stored rows.
pub(crate) async fn write(tx: &mut PgConnection, mut r: VitalRollups) -> Result<(), StoreError> {
    if r.is_empty() {
        return Ok(());
    }
    // The paths each (project, metric, day, bot) of the commit already holds, for the cap.
    // Concurrent commits may each add a path in the same moment: the cap is then passed by
    // at most one path per commit in flight.
    let mut groups = Rows::default();
    for (p, m, d, b, _) in r.pages.keys() {
        groups.project.push(*p);
        groups.metric.push(m);
        groups.time.push(*d);
        groups.bot.push(*b);
    }
    let held = sqlx::query(
        "SELECT v.project_id, v.metric, v.day, v.bot, v.path FROM vitals_pages_daily v
         JOIN (SELECT DISTINCT * FROM UNNEST($1::INT8[], $2::TEXT[], $3::INT8[], $4::INT8[]))
              AS u(p, m, t, b)
           ON v.project_id = u.p AND v.metric = u.m COLLATE \"C\" AND v.day = u.t
              AND v.bot = u.b",
    )
    .bind(&groups.project)
    .bind(&groups.metric)
    .bind(&groups.time)
    .bind(&groups.bot)
    .fetch_all(&mut *tx)
    .await?;
    let mut paths: HashMap<(i64, String, i64, i64), HashSet<String>> = HashMap::new();
    for row in held {
        paths
            .entry((
                row.try_get("project_id")?,
                row.try_get("metric")?,
                row.try_get("day")?,
                row.try_get("bot")?,
            ))
            .or_default()
            .insert(row.try_get("path")?);
    }
    r.cap_pages(&mut |(p, m, d, b, path)| {
        paths
            .get(&(*p, (*m).to_owned(), *d, *b))
            .map_or((0, false), |s| (s.len(), s.contains(path)))
    });

    let mut hourly = Rows::default();
    for ((p, m, h, b), acc) in r.hourly {
        hourly.push(p, m, h, b, String::new(), acc);
    }
    merge(tx, "vitals_hourly", "hour", false, hourly).await?;
    let mut pages = Rows::default();
    for ((p, m, d, b, path), acc) in r.pages {
        pages.push(p, m, d, b, path, acc);
    }
    merge(tx, "vitals_pages_daily", "day", true, pages).await
}

impl Rows {
    fn push(&mut self, p: i64, m: &'static str, t: i64, b: i64, path: String, add: VitalAcc) {
        self.project.push(p);
        self.metric.push(m);
        self.time.push(t);
        self.bot.push(b);
        self.path.push(path);
        self.add.push(add);
    }
}

/// Adds `rows` (in key order: they come from a `BTreeMap`) to `table`, keyed by project,
/// metric, `time` column, bot and, `with_path`, path.
async fn merge(
    tx: &mut PgConnection,
    table: &'static str,
    time: &'static str,
    with_path: bool,
    rows: Rows,
) -> Result<(), StoreError> {
    let (path_col, path_in, path_as, path_eq) = if with_path {
        (
            ", path",
            ", $5::TEXT[]",
            ", path",
            " AND v.path = u.path COLLATE \"C\"",
        )
    } else {
        ("", "", "", "")
    };
    let unnest = format!(
        "UNNEST($1::INT8[], $2::TEXT[], $3::INT8[], $4::INT8[]{path_in}) AS u(p, m, t, b{path_as})"
    );
    let on = format!(
        "v.project_id = u.p AND v.metric = u.m COLLATE \"C\" AND v.{time} = u.t \
         AND v.bot = u.b{path_eq}"
    );
    let bind_keys =
        |q: sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments>| {
            let q = q
                .bind(rows.project.clone())
                .bind(rows.metric.clone())
                .bind(rows.time.clone())
                .bind(rows.bot.clone());
            if with_path {
                q.bind(rows.path.clone())
            } else {
                q
            }
        };
    let empty = Sketch::default().encode();
    let sketch_at = if with_path { "$6" } else { "$5" };
    let ensure = format!(
        "INSERT INTO {table} (project_id, metric, {time}, bot{path_col}, samples, good, poor, sketch)
         SELECT u.p, u.m, u.t, u.b{path_sel}, 0, 0, 0, {sketch_at} FROM {unnest}
         ORDER BY u.p, u.m COLLATE \"C\", u.t, u.b{path_ord}
         ON CONFLICT DO NOTHING",
        path_sel = if with_path { ", u.path" } else { "" },
        path_ord = if with_path { ", u.path COLLATE \"C\"" } else { "" },
    );
    bind_keys(sqlx::query(AssertSqlSafe(ensure)))
        .bind(empty)
        .execute(&mut *tx)
        .await?;
    let lock = format!(
        "SELECT v.project_id, v.metric, v.{time} AS t, v.bot{path_sel}, v.samples, v.good,
                v.poor, v.sketch
         FROM {table} v JOIN {unnest} ON {on}
         ORDER BY v.project_id, v.metric, v.{time}, v.bot{path_ord} FOR UPDATE OF v",
        path_sel = if with_path { ", v.path" } else { "" },
        path_ord = if with_path { ", v.path" } else { "" },
    );
    let stored = bind_keys(sqlx::query(AssertSqlSafe(lock)))
        .fetch_all(&mut *tx)
        .await?;
    let mut old: HashMap<(i64, String, i64, i64, String), VitalAcc> = HashMap::new();
    for row in stored {
        let key = (
            row.try_get("project_id")?,
            row.try_get("metric")?,
            row.try_get("t")?,
            row.try_get("bot")?,
            if with_path {
                row.try_get("path")?
            } else {
                String::new()
            },
        );
        let acc = VitalAcc::stored(&row)?;
        old.insert(key, acc);
    }
    let (mut samples, mut good, mut poor, mut sketches) = (vec![], vec![], vec![], vec![]);
    for (i, add) in rows.add.iter().enumerate() {
        let key = (
            rows.project[i],
            rows.metric[i].to_owned(),
            rows.time[i],
            rows.bot[i],
            rows.path[i].clone(),
        );
        let mut acc = old.remove(&key).unwrap_or_default();
        acc.merge(add);
        samples.push(acc.samples);
        good.push(acc.good);
        poor.push(acc.poor);
        sketches.push(acc.sketch.encode());
    }
    let n = if with_path { 6 } else { 5 };
    let update = format!(
        "UPDATE {table} v SET samples = u.s, good = u.g, poor = u.po, sketch = u.sk
         FROM UNNEST($1::INT8[], $2::TEXT[], $3::INT8[], $4::INT8[]{path_in}, ${n}::INT8[],
                     ${}::INT8[], ${}::INT8[], ${}::BYTEA[]) AS u(p, m, t, b{path_as}, s, g, po, sk)
         WHERE {on}",
        n + 1,
        n + 2,
        n + 3,
    );
    bind_keys(sqlx::query(AssertSqlSafe(update)))
        .bind(samples)
        .bind(good)
        .bind(poor)
        .bind(sketches)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

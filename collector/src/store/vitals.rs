//! Web Vitals rolled up at ingest (migration 0041): per project, metric, UTC hour and bot flag
//! (`vitals_hourly`), and per page path and UTC day (`vitals_pages_daily`), the samples, how
//! many rated good and poor, and a quantile sketch. A range's p75 merges its hours' sketches.
//! Each ingest commit adds the Web Vitals it stored (`sqlite::vitals`, `postgres::vitals`).

use std::collections::{BTreeMap, HashMap};

use futures::TryStreamExt;
use sqlx::Row;

use super::{DAY_MS, HOUR_MS, Store, StoreError};
use crate::analytics::{VITALS, Vital, WEB_VITAL_EVENT, property_number, property_text};
use crate::domain::sketch::Sketch;
use crate::domain::{Message, MessageType, ProjectId};

/// Most page paths kept apart per (project, metric, UTC day, bot flag); samples of later paths
/// count under [`OTHER_PAGES`].
pub const MAX_VITAL_PAGES: usize = 500;
/// Longest page path kept, in characters; longer paths are cut to it.
pub const MAX_PATH_CHARS: usize = 300;
/// The page of samples past [`MAX_VITAL_PAGES`].
pub const OTHER_PAGES: &str = "(other)";
/// The page of samples that name none.
pub const UNKNOWN_PAGE: &str = "(unknown)";

/// Samples of one metric in one bucket: counts by rating and their sketch.
#[derive(Debug, Clone, Default)]
pub struct VitalAcc {
    pub samples: i64,
    pub good: i64,
    pub poor: i64,
    pub sketch: Sketch,
}

impl VitalAcc {
    fn add(&mut self, v: f64, vital: &Vital) {
        self.samples += 1;
        self.good += i64::from(v <= vital.good);
        self.poor += i64::from(v > vital.poor);
        self.sketch.add(v);
    }

    pub fn merge(&mut self, other: &VitalAcc) {
        self.samples += other.samples;
        self.good += other.good;
        self.poor += other.poor;
        self.sketch.merge(&other.sketch);
    }

    /// From a rollup row (`samples`, `good`, `poor`, `sketch`), on either backend.
    pub(crate) fn stored<R: Row>(r: &R) -> Result<Self, StoreError>
    where
        for<'c> &'c str: sqlx::ColumnIndex<R>,
        i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
        Vec<u8>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    {
        let sketch: Vec<u8> = r.try_get("sketch")?;
        Self::from_columns(
            r.try_get("samples")?,
            r.try_get("good")?,
            r.try_get("poor")?,
            &sketch,
        )
    }

    /// From a rollup row's columns (the SQLite ingest thread reads them with rusqlite).
    pub(crate) fn from_columns(
        samples: i64,
        good: i64,
        poor: i64,
        sketch: &[u8],
    ) -> Result<Self, StoreError> {
        Ok(Self {
            samples,
            good,
            poor,
            sketch: Sketch::decode(sketch).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        })
    }
}

/// `vitals_hourly`'s key: project, metric, hour, bot (0 or 1).
pub(crate) type HourKey = (i64, &'static str, i64, i64);
/// `vitals_pages_daily`'s key: project, metric, day, bot, path.
pub(crate) type PageKey = (i64, &'static str, i64, i64, String);

/// What one commit adds, summed from the Web Vitals it stored.
#[derive(Debug, Default)]
pub(crate) struct VitalRollups {
    pub(crate) hourly: BTreeMap<HourKey, VitalAcc>,
    pub(crate) pages: BTreeMap<PageKey, VitalAcc>,
}

/// A Web Vital sample in a stored message: its metric, value and page path. Negative values
/// are no measurement and are left out, as are metrics other than the five.
pub fn vital_sample(m: &Message) -> Option<(&'static Vital, f64, String)> {
    if m.kind != MessageType::Track || m.event.as_deref() != Some(WEB_VITAL_EVENT) {
        return None;
    }
    vital_of_body(&m.body)
}

/// [`vital_sample`] of a stored body already known to be a Web Vital event.
pub fn vital_of_body(body: &str) -> Option<(&'static Vital, f64, String)> {
    let metric = property_text(body, "metric")?;
    let vital = VITALS
        .iter()
        .find(|v| v.metric.eq_ignore_ascii_case(&metric))?;
    let value = property_number(body, "value").filter(|v| *v >= 0.0)?;
    let path = property_text(body, "path")
        .or_else(|| property_text(body, "page.path"))
        .unwrap_or_else(|| UNKNOWN_PAGE.to_owned());
    let path = match path.char_indices().nth(MAX_PATH_CHARS) {
        Some((cut, _)) => path[..cut].to_owned(),
        None => path,
    };
    Some((vital, value, path))
}

impl VitalRollups {
    /// Adds one stored message of `project`, if it is a Web Vital.
    pub(crate) fn add(&mut self, project: i64, m: &Message) {
        let Some((vital, value, path)) = vital_sample(m) else {
            return;
        };
        self.add_sample(
            project,
            m.timestamp.timestamp_millis(),
            m.bot,
            vital,
            value,
            path,
        );
    }

    pub(crate) fn add_sample(
        &mut self,
        project: i64,
        ts: i64,
        bot: bool,
        vital: &'static Vital,
        value: f64,
        path: String,
    ) {
        let bot = i64::from(bot);
        let hour = ts - ts.rem_euclid(HOUR_MS);
        let day = ts - ts.rem_euclid(DAY_MS);
        self.hourly
            .entry((project, vital.metric, hour, bot))
            .or_default()
            .add(value, vital);
        self.pages
            .entry((project, vital.metric, day, bot, path))
            .or_default()
            .add(value, vital);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.hourly.is_empty()
    }

    /// Sends the page rows whose path would make more than [`MAX_VITAL_PAGES`] paths for their
    /// (project, metric, day, bot) to [`OTHER_PAGES`]. `stored` says how many paths each group
    /// holds and whether a path is one of them.
    pub(crate) fn cap_pages(&mut self, stored: &mut impl FnMut(&PageKey) -> (usize, bool)) {
        let mut added: HashMap<(i64, &'static str, i64, i64), usize> = HashMap::new();
        let mut capped = Vec::new();
        for key in self.pages.keys() {
            let (held, has) = stored(key);
            if has || key.4 == OTHER_PAGES {
                continue;
            }
            let n = added.entry((key.0, key.1, key.2, key.3)).or_default();
            if held + *n >= MAX_VITAL_PAGES {
                capped.push(key.clone());
            } else {
                *n += 1;
            }
        }
        for key in capped {
            if let Some(acc) = self.pages.remove(&key) {
                let other = (key.0, key.1, key.2, key.3, OTHER_PAGES.to_owned());
                self.pages.entry(other).or_default().merge(&acc);
            }
        }
    }
}

/// One metric's rows of a range, merged: per bucket start (hours) or per path (days).
pub type Merged<K> = HashMap<(String, K), VitalAcc>;

impl Store {
    /// The hourly Web Vitals of `[from_hour, to)` merged per metric and `bucket_ms` bucket
    /// (aligned to `first`, a multiple of an hour), bots only with `include_bots`. Streams
    /// the rows: memory is one sketch per metric and bucket.
    pub async fn vitals_by_bucket(
        &self,
        project_id: ProjectId,
        from_hour: i64,
        to: i64,
        first: i64,
        bucket_ms: i64,
        include_bots: bool,
    ) -> Result<Merged<i64>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let mut rows = sqlx::query(
                "SELECT metric, hour, samples, good, poor, sketch FROM vitals_hourly
                 WHERE project_id = $1 AND hour >= $2 AND hour < $3 AND (bot = 0 OR $4)",
            )
            .bind(project_id)
            .bind(from_hour)
            .bind(to)
            .bind(include_bots)
            .fetch(pool);
            let mut out = Merged::new();
            while let Some(r) = rows.try_next().await? {
                let hour: i64 = r.try_get("hour")?;
                let bucket = first + (hour - first).div_euclid(bucket_ms) * bucket_ms;
                let acc = VitalAcc::stored(&r)?;
                out.entry((r.try_get("metric")?, bucket))
                    .or_default()
                    .merge(&acc);
            }
            Ok(out)
        })
    }

    /// The per-page Web Vitals of the UTC days `[from_day, to)`, merged per metric and path.
    pub async fn vitals_by_page(
        &self,
        project_id: ProjectId,
        from_day: i64,
        to: i64,
        include_bots: bool,
    ) -> Result<Merged<String>, StoreError> {
        with_db!(self, read_pool, |pool| {
            let mut rows = sqlx::query(
                "SELECT metric, path, samples, good, poor, sketch FROM vitals_pages_daily
                 WHERE project_id = $1 AND day >= $2 AND day < $3 AND (bot = 0 OR $4)",
            )
            .bind(project_id)
            .bind(from_day)
            .bind(to)
            .bind(include_bots)
            .fetch(pool);
            let mut out = Merged::new();
            while let Some(r) = rows.try_next().await? {
                let acc = VitalAcc::stored(&r)?;
                out.entry((r.try_get("metric")?, r.try_get("path")?))
                    .or_default()
                    .merge(&acc);
            }
            Ok(out)
        })
    }
}

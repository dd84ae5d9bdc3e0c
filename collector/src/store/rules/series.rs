//! The series queries rules evaluate: values per bucket, and the matching events behind them.

use sqlx::Row;

use super::Sql;
use crate::domain::ProjectId;
use crate::domain::percentile::percentile_of_sorted;
use crate::domain::rule::{Aggregate, Series};
use crate::store::{Backend, Bind, Store, StoreError, query_with};

impl Store {
    /// `series` per bucket over `[from, to)` (bucket starts aligned to the bucket width),
    /// ascending. Buckets without matching events are absent.
    pub async fn rule_series(
        &self,
        project_id: ProjectId,
        series: &Series,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, f64)>, StoreError> {
        let width = series.bucket.millis();
        let backend = self.backend();
        let use_rollups = series.aggregate == Aggregate::Count
            && series.filters.is_empty()
            && width % crate::store::HOUR_MS == 0;
        let mut q = Sql::default();
        if use_rollups {
            let (p, w, f, t, e) = (
                q.param(Bind::Int(project_id)),
                q.param(Bind::Int(width)),
                q.param(Bind::Int(from)),
                q.param(Bind::Int(to)),
                q.param(Bind::Text(series.event.clone())),
            );
            q.text = format!(
                "SELECT (hour / {w}) * {w} AS b, CAST(SUM(events) AS DOUBLE PRECISION) AS v
                 FROM rollups_hourly
                 WHERE project_id = {p} AND name = {e} AND hour >= {f} AND hour < {t}
                 GROUP BY 1 ORDER BY 1"
            );
        } else {
            let rows = matching_events(&mut q, project_id, series, from, to, backend);
            let w = q.param(Bind::Int(width));
            let agg = match series.aggregate {
                Aggregate::Count => "COUNT(*)",
                Aggregate::Sum => "SUM(v)",
                Aggregate::Avg => "AVG(v)",
                Aggregate::Min => "MIN(v)",
                Aggregate::Max => "MAX(v)",
                Aggregate::P75 => "",
            };
            let only_numbers = if series.aggregate == Aggregate::Count {
                ""
            } else {
                "WHERE v IS NOT NULL"
            };
            q.text = if series.aggregate == Aggregate::P75 {
                format!(
                    "SELECT (ts / {w}) * {w} AS b, CAST(v AS DOUBLE PRECISION) AS v
                     FROM ({rows}) m {only_numbers} ORDER BY 1, 2"
                )
            } else {
                format!(
                    "SELECT (ts / {w}) * {w} AS b, CAST({agg} AS DOUBLE PRECISION) AS v
                     FROM ({rows}) m {only_numbers} GROUP BY 1 ORDER BY 1"
                )
            };
        }
        let rows: Vec<(i64, f64)> = with_db!(self, read_pool, |pool| {
            let rows = query_with(q.text.clone(), &q.binds).fetch_all(pool).await?;
            rows.iter()
                .map(|r| (r.get::<i64, _>("b"), r.get::<f64, _>("v")))
                .collect()
        });
        if series.aggregate != Aggregate::P75 {
            return Ok(rows);
        }
        let mut out: Vec<(i64, f64)> = Vec::new();
        let mut start = 0;
        while start < rows.len() {
            let b = rows[start].0;
            let end = start + rows[start..].iter().take_while(|r| r.0 == b).count();
            let values: Vec<f64> = rows[start..end].iter().map(|r| r.1).collect();
            out.push((b, percentile_of_sorted(&values, 0.75).unwrap_or(f64::NAN)));
            start = end;
        }
        Ok(out)
    }

    /// Up to `limit` matching events of `series` in `[from, to)`: their timestamp and body.
    pub async fn rule_events(
        &self,
        project_id: ProjectId,
        series: &Series,
        from: i64,
        to: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let backend = self.backend();
        let mut q = Sql::default();
        let rows = matching_events(&mut q, project_id, series, from, to, backend);
        let n = q.param(Bind::Int(limit));
        q.text = format!("SELECT ts, body FROM ({rows}) m LIMIT {n}");
        with_db!(self, read_pool, |pool| {
            let rows = query_with(q.text.clone(), &q.binds).fetch_all(pool).await?;
            Ok(rows
                .iter()
                .map(|r| (r.get::<i64, _>("ts"), r.get::<String, _>("body")))
                .collect())
        })
    }
}

/// A subquery of the series' events in `[from, to)` with columns `ts`, `body` and `v` (the
/// numeric value, NULL when the property is not a number).
fn matching_events(
    q: &mut Sql,
    project_id: ProjectId,
    series: &Series,
    from: i64,
    to: i64,
    backend: Backend,
) -> String {
    let (p, e, f, t) = (
        q.param(Bind::Int(project_id)),
        q.param(Bind::Text(series.event.clone())),
        q.param(Bind::Int(from)),
        q.param(Bind::Int(to)),
    );
    let scope = format!(
        "project_id = {p} AND event = {e} AND type = 'track' AND timestamp >= {f} AND timestamp < {t}"
    );
    let mut conditions = Vec::new();
    let value;
    if backend == Backend::Postgres {
        for (k, v) in &series.filters {
            let k = q.param(Bind::Text(k.clone()));
            let v = q.param(Bind::Text(v.to_string()));
            conditions.push(format!("(j -> 'properties' -> {k}) = CAST({v} AS JSONB)"));
        }
        value = match series.value_property() {
            Some(prop) => {
                let k = q.param(Bind::Text(prop.to_owned()));
                format!(
                    "CASE WHEN jsonb_typeof(j -> 'properties' -> {k}) = 'number'
                     THEN CAST(j -> 'properties' ->> {k} AS DOUBLE PRECISION) END"
                )
            }
            None => "NULL".to_owned(),
        };
        let filters = conditions
            .iter()
            .map(|c| format!(" AND {c}"))
            .collect::<String>();
        format!(
            "SELECT ts, body, {value} AS v FROM (SELECT timestamp AS ts, body, body::jsonb AS j \
             FROM events WHERE {scope} OFFSET 0) x WHERE TRUE{filters}"
        )
    } else {
        for (k, v) in &series.filters {
            let path = q.param(Bind::Text(json_path(k)));
            conditions.push(match v {
                serde_json::Value::Bool(b) => {
                    format!("json_type(body, {path}) = '{b}'")
                }
                serde_json::Value::Number(n) => {
                    let v = q.param(Bind::Real(n.as_f64().unwrap_or(f64::NAN)));
                    format!(
                        "json_type(body, {path}) IN ('integer', 'real') AND json_extract(body, {path}) = {v}"
                    )
                }
                other => {
                    let v = q.param(Bind::Text(
                        other.as_str().map(str::to_owned).unwrap_or_default(),
                    ));
                    format!("json_type(body, {path}) = 'text' AND json_extract(body, {path}) = {v}")
                }
            });
        }
        value = match series.value_property() {
            Some(prop) => {
                let path = q.param(Bind::Text(json_path(prop)));
                format!(
                    "CASE WHEN json_type(body, {path}) IN ('integer', 'real')
                     THEN json_extract(body, {path}) END"
                )
            }
            None => "NULL".to_owned(),
        };
        let filters = conditions
            .iter()
            .map(|c| format!(" AND {c}"))
            .collect::<String>();
        format!("SELECT timestamp AS ts, body, {value} AS v FROM events WHERE {scope}{filters}")
    }
}

/// SQLite's JSON path of a top-level property (names are validated: no quotes).
fn json_path(property: &str) -> String {
    format!("$.properties.\"{property}\"")
}

//! Stored bucket values (`rule_buckets`): each bucket of each rule computed once, equal to the
//! straightforward computation over the events that arrived before its bucket was judged; a
//! changed series rebuilds its history; racing evaluators store one value per bucket.

use std::collections::BTreeMap;

use pulseline_collector::alerting::rules::Evaluator;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

/// One track event as the test knows it: minute, country, plan, value.
#[derive(Debug, Clone)]
struct Sample {
    event: &'static str,
    ts: DateTime<Utc>,
    country: Option<&'static str>,
    plan: &'static str,
    value: Value,
}

impl Sample {
    fn props(&self) -> Value {
        let mut p = json!({"plan": self.plan, "value": self.value});
        if let Some(c) = self.country {
            p["country"] = json!(c);
        }
        p
    }
}

fn random_minute(rng: &mut StdRng, minute: DateTime<Utc>, n: usize) -> Vec<Sample> {
    (0..n)
        .map(|_| Sample {
            event: if rng.random_bool(0.8) {
                "checkout"
            } else {
                "refund"
            },
            ts: minute + Duration::milliseconds(rng.random_range(0..60_000)),
            country: [Some("DE"), Some("FR"), None][rng.random_range(0..3)],
            plan: ["pro", "free"][rng.random_range(0..2)],
            value: match rng.random_range(0..10) {
                0 => json!("n/a"),
                1..=4 => json!(rng.random_range(0..500)),
                _ => json!(f64::from(rng.random_range(0..100_000)) / 100.0),
            },
        })
        .collect()
}

/// PostgreSQL's `percentile_cont(0.75)`, written out.
fn p75(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let pos = 0.75 * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    Some(v[lo] + (v[hi] - v[lo]) * (pos - lo as f64))
}

/// The rules below, computed straight from the samples of one minute.
fn expected(samples: &[Sample], minute: DateTime<Utc>) -> [Option<f64>; 3] {
    let mine: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.event == "checkout" && s.ts >= minute && s.ts < minute + Duration::minutes(1))
        .collect();
    let de = mine.iter().filter(|s| s.country == Some("DE")).count() as f64;
    let numbers = |f: &dyn Fn(&Sample) -> bool| -> Vec<f64> {
        mine.iter()
            .filter(|s| f(s))
            .filter_map(|s| s.value.as_f64())
            .collect()
    };
    let all = numbers(&|_| true);
    let pro = numbers(&|s| s.plan == "pro");
    [
        (de > 0.0).then_some(de),
        (!all.is_empty()).then(|| all.iter().sum()),
        p75(pro),
    ]
}

async fn stored(app: &TestApp, rule: i64, bucket: DateTime<Utc>) -> Vec<Option<f64>> {
    helpers::query_column(
        &app.database_url,
        &format!(
            "SELECT value FROM rule_buckets WHERE rule_id = {rule} AND bucket_start = {}",
            bucket.timestamp_millis()
        ),
    )
    .await
}

fn close(minute: DateTime<Utc>) -> DateTime<Utc> {
    minute + Duration::minutes(1) + Duration::seconds(16)
}

#[tokio::test]
async fn stored_bucket_values_equal_the_straightforward_computation() {
    let mut rig = rig().await;
    let mut rng = StdRng::seed_from_u64(20);
    let ids = [
        rig.create_rule(json!({"name": "DE checkouts",
            "series": {"event": "checkout", "bucket": "minute", "filters": {"country": "DE"}},
            "condition": {"type": "threshold", "op": ">", "value": 1e9}, "no_data": "keep"}))
            .await,
        rig.create_rule(json!({"name": "revenue",
            "series": {"event": "checkout", "aggregate": "sum", "bucket": "minute"},
            "condition": {"type": "threshold", "op": ">", "value": 1e12}, "no_data": "keep"}))
            .await,
        rig.create_rule(json!({"name": "pro p75",
            "series": {"event": "checkout", "aggregate": "p75", "property": "value",
                       "bucket": "minute", "filters": {"plan": "pro"}},
            "condition": {"type": "anomaly", "seasonality": "none"}, "no_data": "keep"}))
            .await,
    ];
    let mut evaluator = Evaluator::new("memory");
    let mut judged: Vec<Sample> = Vec::new();
    let start = hour(2);
    for m in 0..20 {
        let minute = start + Duration::minutes(m);
        // Events of the minute, some sent after it ended but before it is judged: all count.
        let n = rng.random_range(0..25);
        let samples = random_minute(&mut rng, minute, n);
        send_samples(&mut rig, &samples).await;
        judged.extend(samples);
        rig.clock.set(close(minute));
        if m % 3 == 0 {
            // A fresh evaluator reads the history back from the store, as after a restart.
            run_once(&rig.store, close(minute), "fresh").await.unwrap();
        } else {
            evaluator.pass(&rig.store, close(minute)).await.unwrap();
        }
        let want = expected(&judged, minute);
        for (rule, want) in ids.iter().zip(want) {
            let got = stored(&rig.app, *rule, minute).await;
            assert!(
                same(&got, want),
                "minute {m}: stored {got:?}, computed {want:?}"
            );
        }
        // Late events for a minute already judged: they do not change its stored value.
        let late = random_minute(&mut rng, minute, 5);
        send_samples(&mut rig, &late).await;
    }
    // The anomaly rule kept its whole history (every judged minute, empty ones as NULL); the
    // threshold rules keep only the bucket they judge.
    for m in 0..20 {
        let minute = start + Duration::minutes(m);
        let (got, want) = (
            stored(&rig.app, ids[2], minute).await,
            expected(&judged, minute)[2],
        );
        assert!(
            same(&got, want),
            "minute {m}: stored {got:?}, computed {want:?}"
        );
    }
    let rows = |id: i64| format!("SELECT COUNT(*) FROM rule_buckets WHERE rule_id = {id}");
    assert_eq!(rig.app.query_i64(&rows(ids[0])).await, 1);
    // The anomaly rule's rows: its whole history window, one row per bucket, up to the last.
    let span = |f: &str| {
        format!(
            "SELECT {f}(bucket_start) FROM rule_buckets WHERE rule_id = {}",
            ids[2]
        )
    };
    let (first, last) = (
        rig.app.query_i64(&span("MIN")).await,
        rig.app.query_i64(&span("MAX")).await,
    );
    assert_eq!(last, (start + Duration::minutes(19)).timestamp_millis());
    assert!(first < start.timestamp_millis());
    assert_eq!(
        rig.app.query_i64(&rows(ids[2])).await,
        (last - first) / 60_000 + 1
    );
}

/// One stored row with the computed value (sums may differ in the last bit: the database adds
/// in its own order).
fn same(got: &[Option<f64>], want: Option<f64>) -> bool {
    match (got, want) {
        ([None], None) => true,
        ([Some(g)], Some(w)) => (g - w).abs() <= 1e-9 * w.abs().max(1.0),
        _ => false,
    }
}

async fn send_samples(rig: &mut Rig, samples: &[Sample]) {
    let events: Vec<(&str, DateTime<Utc>, Value)> =
        samples.iter().map(|s| (s.event, s.ts, s.props())).collect();
    rig.send(&events).await;
}

#[tokio::test]
async fn a_changed_series_rebuilds_its_history_and_drops_the_old_rows() {
    let mut rig = rig().await;
    for h in 0..6 {
        rig.send_hour("order", hour(h), 4, json!({"country": "DE"}))
            .await;
        rig.send_hour("order", hour(h), 7 + h as usize, json!({"country": "FR"}))
            .await;
    }
    let rule = |country: &str| {
        json!({"name": "orders", "series": {"event": "order", "filters": {"country": country}},
        "condition": {"type": "anomaly", "seasonality": "none"}})
    };
    let id = rig.create_rule(rule("DE")).await;
    rig.pass_at(after(6)).await;
    let sql = format!(
        "SELECT value FROM rule_buckets WHERE rule_id = {id} AND value IS NOT NULL ORDER BY bucket_start"
    );
    let values: Vec<f64> = helpers::query_column(&rig.app.database_url, &sql).await;
    assert_eq!(values, vec![4.0; 6]);
    let resp = rig
        .app
        .http
        .put(rig.app.url(&format!("/api/v1/rules/{id}")))
        .bearer_auth(&rig.app.keys.secret_key)
        .json(&rule("FR"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    rig.pass_at(after(6) + Duration::minutes(1)).await;
    let values: Vec<f64> = helpers::query_column(&rig.app.database_url, &sql).await;
    assert_eq!(values, vec![7.0, 8.0, 9.0, 10.0, 11.0, 12.0]);
    let hashes =
        format!("SELECT COUNT(DISTINCT series_hash) FROM rule_buckets WHERE rule_id = {id}");
    assert_eq!(rig.app.query_i64(&hashes).await, 1, "the DE rows are gone");
    // Deleting the rule deletes its buckets.
    let resp = rig
        .app
        .http
        .delete(rig.app.url(&format!("/api/v1/rules/{id}")))
        .bearer_auth(&rig.app.keys.secret_key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(
        rig.app.query_i64("SELECT COUNT(*) FROM rule_buckets").await,
        0
    );
}

/// Evaluators that keep histories in memory, racing pass after pass: one stored value per
/// bucket, the same one for everybody, and one firing notification.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_evaluators_store_one_value_per_bucket_and_fire_once() {
    let mut rig = rig().await;
    // A steady 10 signups an hour for 14 hours, then 60. A threshold rule: what races here is
    // the stored value of each bucket and the transition, not the detector (contextOSE stays
    // silent for its first REST_BUCKETS buckets). A threshold keeps no history, so only the
    // latest bucket's row stays.
    for h in 0..15 {
        rig.send_hour(
            "signup",
            hour(h),
            if h == 14 { 60 } else { 10 },
            json!({"plan": "pro"}),
        )
        .await;
    }
    let id = rig
        .create_rule(json!({"name": "signups",
            "series": {"event": "signup", "filters": {"plan": "pro"}},
            "condition": {"type": "threshold", "op": ">", "value": 30}}))
        .await;
    let evaluators: Vec<_> = (0..4)
        .map(|n| Arc::new(tokio::sync::Mutex::new(Evaluator::new(format!("e{n}")))))
        .collect();
    for h in 1..=15 {
        let mut passes = Vec::new();
        for e in &evaluators {
            let (e, store) = (Arc::clone(e), rig.app.store().await);
            passes.push(tokio::spawn(async move {
                e.lock().await.pass(&store, after(h)).await.unwrap()
            }));
        }
        for p in passes {
            p.await.unwrap();
        }
    }
    assert_eq!(rig.counts().await, [1, 0, 0, 0]);
    let per_bucket: BTreeMap<i64, i64> = helpers::query_column::<i64>(
        &rig.app.database_url,
        &format!(
            "SELECT bucket_start FROM rule_buckets WHERE rule_id = {id} AND value IS NOT NULL"
        ),
    )
    .await
    .into_iter()
    .fold(BTreeMap::new(), |mut m, b| {
        *m.entry(b).or_insert(0) += 1;
        m
    });
    assert_eq!(per_bucket.len(), 1);
    assert!(per_bucket.values().all(|n| *n == 1), "{per_bucket:?}");
}

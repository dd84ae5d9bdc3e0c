//! Every dashboard route is described in the OpenAPI document, and bad input gets a 400 that
//! says what to fix.

use std::collections::BTreeSet;
use std::sync::Arc;

use pulseline_collector::clock::SystemClock;
use pulseline_collector::routes::DASHBOARD_PREFIX;
use serde_json::{Value, json};

use super::{Dash, Login, spawn};

/// The paths the router registers under `/api/dash`, read from the code that registers them:
/// `dashboard::router` (every `.route("…", …)`) and the alerting twins (every
/// `.route(&at("…"), …)`, mounted under [`DASHBOARD_PREFIX`]). A route whose path is not such
/// a literal fails here, so a new route cannot escape the check below.
fn registered_dashboard_paths() -> BTreeSet<String> {
    let src = |file: &str| {
        std::fs::read_to_string(format!("{}/src/routes/{file}", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
    };
    let dashboard = src("dashboard/mod.rs");
    let routes = src("mod.rs");
    let alerting = &routes[routes
        .find("mod alerting_routes")
        .expect("alerting_routes module")..];
    let mut paths = BTreeSet::new();
    for (text, prefix) in [(dashboard.as_str(), ""), (alerting, DASHBOARD_PREFIX)] {
        for (at, _) in text.match_indices(".route(") {
            let arg = text[at + ".route(".len()..].trim_start();
            let literal = arg
                .strip_prefix('"')
                .or_else(|| arg.strip_prefix("&at(\""))
                .unwrap_or_else(|| panic!("a route with a computed path: {}", &arg[..40]));
            let path = &literal[..literal.find('"').unwrap()];
            let path = format!("{prefix}{path}");
            if path.starts_with("/api/dash") {
                paths.insert(path);
            }
        }
    }
    paths
}

/// The methods the router serves at `path`, from the `Allow` header of its 405 to TRACE (which
/// no route takes); a path it does not serve gets the API's 404 instead.
async fn served_methods(app: &Dash, path: &str) -> BTreeSet<String> {
    let concrete = path
        .split('/')
        .map(|seg| if seg.starts_with('{') { "1" } else { seg })
        .collect::<Vec<_>>()
        .join("/");
    let resp = app
        .http
        .request(reqwest::Method::TRACE, app.url(&concrete))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405, "{path} is not served by the router");
    let allow = resp.headers()["allow"].to_str().unwrap().to_owned();
    allow
        .split(',')
        .map(|m| m.trim().to_lowercase())
        .filter(|m| m != "head")
        .collect()
}

#[tokio::test]
async fn every_dashboard_route_is_in_the_openapi_description() {
    let app = spawn(|_| {}, Arc::new(SystemClock)).await;
    let doc: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let registered = registered_dashboard_paths();
    for known in [
        "/api/dash/session",
        "/api/dash/projects/{project}/tail",
        "/api/dash/projects/{project}/rules/{id}/preview",
    ] {
        assert!(
            registered.contains(known),
            "{known} not found in {registered:?}"
        );
    }
    let documented: BTreeSet<String> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|p| p.starts_with("/api/dash"))
        .cloned()
        .collect();
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from /openapi.json: {undocumented:?}"
    );
    let unrouted: Vec<_> = documented.difference(&registered).collect();
    assert!(
        unrouted.is_empty(),
        "documented but not routed: {unrouted:?}"
    );

    for path in &registered {
        let item = doc["paths"][path].as_object().unwrap();
        let documented_methods: BTreeSet<String> = item
            .keys()
            .filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str()))
            .cloned()
            .collect();
        assert_eq!(
            served_methods(&app, path).await,
            documented_methods,
            "methods of {path}: served (left) vs documented (right)"
        );
        for (method, op) in item.iter().filter(|(k, _)| documented_methods.contains(*k)) {
            let what = format!("{method} {path}");
            assert_eq!(op["tags"], json!(["dashboard"]), "{what}");
            let params: Vec<(&str, &str)> = op["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| (p["name"].as_str().unwrap(), p["in"].as_str().unwrap()))
                        .collect()
                })
                .unwrap_or_default();
            for seg in path.split('/').filter(|s| s.starts_with('{')) {
                let name = seg.trim_matches(|c| c == '{' || c == '}');
                assert!(
                    params.contains(&(name, "path")),
                    "{what}: no path parameter {name}"
                );
            }
            let login = path == "/api/dash/session" && method == "post";
            if login {
                assert!(op.get("security").is_none(), "{what} needs no session");
            } else {
                assert_eq!(op["security"], json!([{"session": []}]), "{what}");
            }
            let csrf = params.contains(&("x-csrf-token", "header"));
            assert_eq!(
                csrf,
                method != "get" && !login,
                "{what}: X-CSRF-Token documented"
            );
            let statuses = op["responses"].as_object().unwrap();
            assert!(
                statuses.keys().any(|k| k.starts_with('2')),
                "{what}: no success"
            );
            if !login {
                assert!(statuses.contains_key("401"), "{what} documents 401");
            }
            if path.contains("{project}") {
                assert!(statuses.contains_key("404"), "{what} documents 404");
            }
        }
    }

    // OpenAPI wants operation ids unique in the document (code generators name methods by them).
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_default();
            assert!(
                ids.insert(id.to_owned()),
                "{method} {path}: operationId {id} is taken"
            );
        }
    }

    let create = &doc["paths"]["/api/dash/projects/{project}/rules"]["post"];
    let params: Vec<&str> = create["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(params, ["project", "x-csrf-token"]);
    assert_eq!(
        doc["components"]["securitySchemes"]["session"]["in"],
        "cookie"
    );
    let csv = &doc["paths"]["/api/dash/projects/{project}/events"]["get"]["responses"]["200"];
    assert!(csv["content"].get("text/csv").is_some(), "{csv}");
}

/// Sends `path` as the admin (POST for a rotation, else GET) and expects a 400 saying `says`.
async fn refused(app: &Dash, me: &Login, path: &str, says: &str) {
    let method = if path.ends_with("/rotate") {
        reqwest::Method::POST
    } else {
        reqwest::Method::GET
    };
    let resp = app
        .http
        .request(method, app.url(path))
        .header("cookie", &me.cookie)
        .header("x-csrf-token", &me.csrf)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.expect("an error body in JSON");
    assert_eq!(status, 400, "{path}: {body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{path}: {body}");
}

/// Limits of a range: unix milliseconds from 0 to the end of year 9999; a bucket of at least a
/// minute; a funnel window of 1 s to a year. Extremes answer 400, never overflow.
#[tokio::test]
async fn out_of_range_query_parameters_get_a_400_that_says_the_range() {
    let app = spawn(|_| {}, Arc::new(SystemClock)).await;
    let me = app.admin().await;
    let p = |rest: &str| format!("/api/dash/projects/{}{rest}", app.project);
    for (path, says) in [
        (
            p("/series?from=-1"),
            "from (-1) must be unix milliseconds from 0",
        ),
        (
            p("/series?to=9223372036854775807"),
            "to (9223372036854775807) must be",
        ),
        (
            p("/series?to=-9223372036854775808"),
            "to (-9223372036854775808) must be",
        ),
        (
            p("/events?from=253402300800000"),
            "from (253402300800000) must be",
        ),
        (p("/vitals?from=5&to=5"), "must be before to"),
        (p("/sessions?bucket=0"), "at least one minute"),
        // A bucket near i64::MAX once overflowed the Web Vitals' rounding to whole hours.
        (
            p("/vitals?bucket=9223372036854000001"),
            "at most 253402300799999",
        ),
        (
            p("/series?bucket=253402300800000"),
            "at most 253402300799999",
        ),
        (
            p("/retention?bucket=59999&period=week"),
            "at least one minute",
        ),
        (
            p("/funnel?steps=a,b&window_secs=0"),
            "window_secs (0) must be 1 to 31622400",
        ),
        (
            p("/funnel?steps=a,b&window_secs=9223372036854775807"),
            "window_secs",
        ),
    ] {
        refused(&app, &me, &path, says).await;
    }
}

#[tokio::test]
async fn malformed_queries_and_path_ids_get_a_400_that_says_what_to_fix() {
    let app = spawn(|_| {}, Arc::new(SystemClock)).await;
    let me = app.admin().await;
    let p = |rest: &str| format!("/api/dash/projects/{}{rest}", app.project);
    for (path, says) in [
        (p("/funnel"), "invalid query"),
        (p("/series?top=-1"), "invalid query"),
        (p("/audit?limit=many"), "invalid query"),
        (
            "/api/dash/projects/abc/usage".to_owned(),
            "ids in the path are integers",
        ),
        (p("/keys/xyz/rotate"), "ids in the path are integers"),
    ] {
        refused(&app, &me, &path, says).await;
    }
}

#[tokio::test]
async fn malformed_json_bodies_get_a_400_that_says_so() {
    let app = spawn(|_| {}, Arc::new(SystemClock)).await;
    let me = app.admin().await;
    let p = |rest: &str| format!("/api/dash/projects/{}{rest}", app.project);
    for (path, body) in [
        ("/api/dash/projects".to_owned(), json!({"title": "no name"})),
        (p("/keys"), json!({"kind": 7})),
        (p("/members"), json!([])),
        (p("/invitations"), json!({"email": "x@example.com"})),
        (
            "/api/dash/password".to_owned(),
            json!({"new_password": "x"}),
        ),
    ] {
        let (status, answer) = app.post(&me, &path, body).await;
        assert_eq!(status, 400, "{path}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.starts_with("invalid JSON body"), "{path}: {answer}");
    }
}

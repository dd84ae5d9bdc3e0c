//! The dashboard's alerting routes in `/openapi.json`. They are the secret-key routes' handlers
//! mounted under `/api/dash/projects/{project}` (see [`super::extract::Caller`]), so their description
//! is derived from those routes' rather than written twice: the project moves from the key into
//! the path, the session cookie replaces the key, and changes carry the CSRF token.

use utoipa::Modify;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, Object, OpenApi, Ref, RefOr, Required, ResponseBuilder, Type,
};

use super::extract::{CSRF_HEADER, SESSION_COOKIE};
use super::{DASHBOARD_PREFIX, SECRET_KEY_PREFIX};

/// The secret-key paths that have a dashboard twin.
const MIRRORED: [&str; 7] = [
    "/channels",
    "/categories",
    "/deliveries",
    "/rules",
    "/alerts",
    "/persons",
    "/inbound-sources",
];

/// Adds `/api/dash/projects/{project}/…` for every mirrored `/api/v1/…` path.
pub(super) struct DashboardMirror;

impl Modify for DashboardMirror {
    fn modify(&self, openapi: &mut OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "session",
                SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                    SESSION_COOKIE,
                    "The dashboard's session cookie (POST /api/dash/session). Changes also \
                     need the session's CSRF token in X-CSRF-Token.",
                ))),
            );
        let twins: Vec<_> = openapi
            .paths
            .paths
            .iter()
            .filter_map(|(path, item)| {
                let rest = path.strip_prefix(SECRET_KEY_PREFIX)?;
                MIRRORED
                    .iter()
                    .any(|m| rest == *m || rest.starts_with(&format!("{m}/")))
                    .then(|| (format!("{DASHBOARD_PREFIX}{rest}"), item.clone()))
            })
            .collect();
        for (path, mut item) in twins {
            for (op, changes) in [
                (&mut item.get, false),
                (&mut item.post, true),
                (&mut item.put, true),
                (&mut item.patch, true),
                (&mut item.delete, true),
            ] {
                if let Some(op) = op {
                    dashboard_operation(op, changes);
                }
            }
            openapi.paths.paths.insert(path, item);
        }
    }
}

fn dashboard_operation(op: &mut Operation, changes: bool) {
    op.tags = Some(vec!["dashboard".into()]);
    op.operation_id = op.operation_id.take().map(|id| format!("dashboard_{id}"));
    let who = if changes {
        "Needs the developer role or higher (403 otherwise) and the X-CSRF-Token header."
    } else {
        "Any member of the project."
    };
    op.description = Some(format!(
        "{}\n\nDashboard twin of the secret-key route: session cookie, project in the path. {who} \
         Not a member: 404.",
        op.description.take().unwrap_or_default()
    ));
    let mut params = vec![param(
        "project",
        ParameterIn::Path,
        "The project id (GET /api/dash/projects).",
    )];
    if changes {
        params.push(param(
            CSRF_HEADER,
            ParameterIn::Header,
            "The csrf_token of GET /api/dash/session.",
        ));
    }
    params.extend(op.parameters.take().unwrap_or_default());
    op.parameters = Some(params);
    let mut errors = vec![
        ("401", "Not logged in, or the session expired"),
        (
            "404",
            "No such project among the user's (or nothing with that id in it)",
        ),
    ];
    if changes {
        errors.push((
            "403",
            "Below the developer role, missing or wrong X-CSRF-Token, or a cross-site Origin",
        ));
    }
    for (status, why) in errors {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| error_response(why));
    }
    op.security = Some(vec![SecurityRequirement::new(
        "session",
        Vec::<String>::new(),
    )]);
}

/// A response with the API's error body.
fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .into()
}

fn param(name: &str, at: ParameterIn, description: &str) -> Parameter {
    let schema = if matches!(at, ParameterIn::Path) {
        Object::with_type(Type::Integer)
    } else {
        Object::with_type(Type::String)
    };
    ParameterBuilder::new()
        .name(name)
        .parameter_in(at)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

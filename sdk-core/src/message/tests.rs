use super::builders::*;
use super::encode::*;
use super::validate::*;
use serde_json::{Map, Value, json};

use crate::Error;
use crate::limits::{MAX_EVENT_NAME_CHARS, MAX_ID_CHARS, MAX_MESSAGE_BYTES};
use std::time::{Duration, UNIX_EPOCH};

fn encoder() -> Encoder {
    Encoder::new("pulseline-rust", "9.9.9")
}

fn parse(e: &Encoded) -> Value {
    serde_json::from_slice(&e.bytes).unwrap()
}

const NOW: Duration = Duration::from_millis(1_767_225_600_123); // 2026-01-01T00:00:00.123Z

#[test]
fn track_has_every_segment_field() {
    let mut ctx = Map::new();
    ctx.insert("ip".into(), json!("127.0.0.1"));
    ctx.insert("library".into(), json!("spoofed"));
    let m = Track::new(User::id("u1").with_anonymous_id("a1"), "signup")
        .properties(json!({ "plan": "pro", "quote": "say \"hi\"" }))
        .context(ctx);
    let e = encoder().track(&m, UNIX_EPOCH + NOW).unwrap();
    let v = parse(&e);
    assert_eq!(v["type"], "track");
    assert_eq!(v["messageId"], e.message_id.as_str());
    let id = uuid::Uuid::parse_str(e.message_id.as_str()).unwrap();
    assert_eq!(id.get_version_num(), 7);
    assert_eq!(v["timestamp"], "2026-01-01T00:00:00.123Z");
    assert_eq!(v["userId"], "u1");
    assert_eq!(v["anonymousId"], "a1");
    assert_eq!(v["event"], "signup");
    assert_eq!(
        v["properties"],
        json!({ "plan": "pro", "quote": "say \"hi\"" })
    );
    assert_eq!(
        v["context"]["library"],
        json!({ "name": "pulseline-rust", "version": "9.9.9" })
    );
    assert_eq!(v["context"]["ip"], "127.0.0.1");
}

#[test]
fn each_type_carries_its_required_field() {
    let now = UNIX_EPOCH + NOW;
    let e = encoder();
    let v = parse(
        &e.group(&Group::new("u1", "acme").traits(json!({"seats": 3})), now)
            .unwrap(),
    );
    assert_eq!(
        (v["type"].as_str(), v["groupId"].as_str()),
        (Some("group"), Some("acme"))
    );
    assert_eq!(v["traits"]["seats"], 3);
    let v = parse(&e.alias(&Alias::new("u1", "anon-9"), now).unwrap());
    assert_eq!(
        (v["userId"].as_str(), v["previousId"].as_str()),
        (Some("u1"), Some("anon-9"))
    );
    let v = parse(
        &e.page(&Page::new(User::anonymous("a")).name("Home"), now)
            .unwrap(),
    );
    assert_eq!(
        (v["type"].as_str(), v["name"].as_str()),
        (Some("page"), Some("Home"))
    );
    assert!(v.get("userId").is_none());
    let v = parse(&e.screen(&Screen::new("u1"), now).unwrap());
    assert_eq!(v["type"], "screen");
    let v = parse(
        &e.identify(&Identify::new("u1").traits(json!({"email": "a@b.c"})), now)
            .unwrap(),
    );
    assert_eq!(v["traits"]["email"], "a@b.c");
}

#[test]
fn cookieless_visitor_may_have_no_id() {
    let now = UNIX_EPOCH + NOW;
    let context = crate::RawJson::parse(r#"{"cookieless":true}"#).unwrap();
    let v = parse(
        &encoder()
            .page(&Page::new(User::cookieless()).context_json(context), now)
            .unwrap(),
    );
    assert!(v.get("anonymousId").is_none() && v.get("userId").is_none());
    assert_eq!(v["context"]["cookieless"], true);
    let v = parse(
        &encoder()
            .track(&Track::new(User::cookieless().with_user_id("u1"), "x"), now)
            .unwrap(),
    );
    assert_eq!(v["userId"], "u1");
    assert!(v.get("anonymousId").is_none());
}

#[test]
fn context_json_is_written_as_is_after_the_library() {
    let now = UNIX_EPOCH + NOW;
    let context =
        crate::RawJson::parse(r#" { "page": {"path": "/a", "library": 1}, "x": [1, {"y": 2}] } "#);
    let e = encoder()
        .track(&Track::new("u1", "x").context_json(context.unwrap()), now)
        .unwrap();
    let v = parse(&e);
    assert_eq!(v["context"]["library"]["name"], "pulseline-rust");
    assert_eq!(v["context"]["page"], json!({ "path": "/a", "library": 1 }));
    assert_eq!(v["context"]["x"], json!([1, { "y": 2 }]));
    let empty = crate::RawJson::parse("{}").unwrap();
    let v = parse(
        &encoder()
            .track(&Track::new("u1", "x").context_json(empty), now)
            .unwrap(),
    );
    assert_eq!(v["context"].as_object().unwrap().len(), 1);
    for bad in [
        r#"{"a": {}, "library": {}}"#,
        r#"{"library":"x"}"#,
        "[1]",
        "\"s\"",
    ] {
        let m = Track::new("u1", "x").context_json(crate::RawJson::parse(bad).unwrap());
        assert!(
            matches!(
                encoder().track(&m, now),
                Err(Error::InvalidMessage {
                    field: "context",
                    ..
                })
            ),
            "{bad}"
        );
    }
}

#[test]
fn rejects_missing_required_fields_with_the_field_name() {
    let now = UNIX_EPOCH + NOW;
    let e = encoder();
    let field = |r: Result<Encoded, Error>| match r {
        Err(Error::InvalidMessage { field, .. }) => field,
        other => panic!("expected InvalidMessage, got {other:?}"),
    };
    assert_eq!(field(e.track(&Track::new("u1", ""), now)), "event");
    assert_eq!(field(e.track(&Track::new("", "x"), now)), "userId");
    assert_eq!(
        field(e.track(&Track::new(User::anonymous(""), "x"), now)),
        "anonymousId"
    );
    assert_eq!(field(e.group(&Group::new("u1", ""), now)), "groupId");
    assert_eq!(field(e.alias(&Alias::new("u1", ""), now)), "previousId");
    assert_eq!(field(e.alias(&Alias::new("", "p"), now)), "userId");
    assert_eq!(
        field(e.track(&Track::new("u1", "x").properties(vec![1, 2]), now)),
        "properties"
    );
    assert_eq!(
        field(e.track(&Track::new("u1", "x").timestamp(UNIX_EPOCH - NOW), now)),
        "timestamp"
    );
}

#[test]
fn rejects_messages_over_the_collector_limit_and_accepts_just_under() {
    let now = UNIX_EPOCH + NOW;
    let e = encoder();
    let base = e
        .track(&Track::new("u1", "x").properties(json!({ "p": "" })), now)
        .unwrap();
    let room = MAX_MESSAGE_BYTES - base.bytes.len();
    let fits = e
        .track(
            &Track::new("u1", "x").properties(json!({ "p": "a".repeat(room) })),
            now,
        )
        .unwrap();
    assert_eq!(fits.bytes.len(), MAX_MESSAGE_BYTES);
    let err = e.track(
        &Track::new("u1", "x").properties(json!({ "p": "a".repeat(room + 1) })),
        now,
    );
    assert!(
        matches!(err, Err(Error::MessageTooLarge { size, limit }) if size == MAX_MESSAGE_BYTES + 1 && limit == MAX_MESSAGE_BYTES)
    );
}

#[test]
fn caller_supplied_message_id_and_timestamp_are_kept() {
    let id = uuid::Uuid::now_v7();
    let at = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let e = encoder()
        .track(
            &Track::new("u1", "x").message_id(id).timestamp(at),
            UNIX_EPOCH + NOW,
        )
        .unwrap();
    let v = parse(&e);
    assert_eq!(v["messageId"], id.to_string());
    assert_eq!(v["timestamp"], "2001-09-09T01:46:40.000Z");
}

#[test]
fn any_non_empty_string_is_a_message_id_sent_as_given() {
    for id in [
        "order-1042",
        "ORDER \"1\"\n",
        "🙂",
        "0192F1A4-5B6C-7D8E-9F00-112233445566",
    ] {
        let e = encoder()
            .track(&Track::new("u1", "x").message_id(id), UNIX_EPOCH + NOW)
            .unwrap();
        assert_eq!(parse(&e)["messageId"], id);
        assert_eq!(e.message_id, id);
    }
    let err = encoder()
        .track(&Track::new("u1", "x").message_id(""), UNIX_EPOCH + NOW)
        .unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidMessage {
            field: "messageId",
            ..
        }
    ));
}

#[test]
fn the_too_long_reasons_name_the_limits() {
    assert_eq!(
        ID_TOO_LONG,
        format!("must be at most {MAX_ID_CHARS} characters")
    );
    assert_eq!(
        NAME_TOO_LONG,
        format!("must be at most {MAX_EVENT_NAME_CHARS} characters once trimmed")
    );
}

#[test]
fn ids_and_names_over_the_collector_limits_are_refused_at_capture() {
    let now = UNIX_EPOCH + NOW;
    let e = encoder();
    // Counted in characters: 200 two-byte characters fit, 201 do not.
    let at = "é".repeat(MAX_ID_CHARS);
    let over = format!("{at}x");
    let field = |r: Result<Encoded, Error>| match r {
        Err(Error::InvalidMessage { field, reason }) => (field, reason),
        other => panic!("expected InvalidMessage, got {other:?}"),
    };
    assert!(e.track(&Track::new(at.as_str(), "x"), now).is_ok());
    assert!(
        e.track(&Track::new(User::anonymous(at.as_str()), "x"), now)
            .is_ok()
    );
    assert_eq!(
        field(e.track(&Track::new(over.as_str(), "x"), now)),
        ("userId", ID_TOO_LONG)
    );
    let both = User::id("u1").with_anonymous_id(over.as_str());
    assert_eq!(
        field(e.track(&Track::new(both, "x"), now)),
        ("anonymousId", ID_TOO_LONG)
    );
    assert_eq!(
        field(e.group(&Group::new("u1", over.as_str()), now)),
        ("groupId", ID_TOO_LONG)
    );
    assert_eq!(
        field(e.alias(&Alias::new("u1", over.as_str()), now)),
        ("previousId", ID_TOO_LONG)
    );
    assert_eq!(
        field(e.alias(&Alias::new(over.as_str(), "p"), now)),
        ("userId", ID_TOO_LONG)
    );
    // Names are trimmed first, as the collector does.
    let name = format!("  {}  ", "n".repeat(MAX_EVENT_NAME_CHARS));
    assert!(e.track(&Track::new("u1", name.as_str()), now).is_ok());
    let long = "n".repeat(MAX_EVENT_NAME_CHARS + 1);
    assert_eq!(
        field(e.track(&Track::new("u1", long.as_str()), now)),
        ("event", NAME_TOO_LONG)
    );
    assert_eq!(
        field(e.page(&Page::new("u1").name(long.as_str()), now)),
        ("name", NAME_TOO_LONG)
    );
    assert_eq!(field(e.track(&Track::new("u1", " \t"), now)).0, "event");
    assert_eq!(field(e.screen(&Screen::new("u1").name(" "), now)).0, "name");
}

#[test]
fn message_fields_apply_to_every_builder_and_keep_what_they_do_not_set() {
    let now = UNIX_EPOCH + NOW;
    let mut context = Map::new();
    context.insert("locale".into(), json!("fr-FR"));
    let fields = MessageFields {
        message_id: Some("m-1".into()),
        context: Some(context),
        ..MessageFields::default()
    };
    let at = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let m = Track::new("u1", "x").timestamp(at).fields(fields.clone());
    let v = parse(&encoder().track(&m, now).unwrap());
    assert_eq!(v["messageId"], "m-1");
    assert_eq!(v["timestamp"], "2001-09-09T01:46:40.000Z");
    assert_eq!(v["context"]["locale"], "fr-FR");
    let v = parse(
        &encoder()
            .alias(&Alias::new("u1", "p").fields(fields), now)
            .unwrap(),
    );
    assert_eq!(v["messageId"], "m-1");
    assert_eq!(v["context"]["locale"], "fr-FR");
}

#[test]
fn user_from_ids_needs_one_id() {
    assert!(matches!(
        User::from_ids(None, None),
        Err(Error::InvalidMessage {
            field: "userId",
            reason: "or anonymousId is required"
        })
    ));
    assert_eq!(
        User::from_ids(Some("u".into()), Some("a".into())).unwrap(),
        User::id("u").with_anonymous_id("a")
    );
}

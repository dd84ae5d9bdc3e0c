//! The six message builders, [`User`] and the fields every message shares.

use serde_json::{Map, Value};
use web_time::SystemTime;

use super::validate::invalid;
use crate::{Error, MessageId, ToJson};

/// Who a message is about: a known user id, an anonymous id, or both.
///
/// Segment requires at least one of the two; an empty string counts as missing. The one
/// exception is a visitor of a browser page in cookieless mode ([`User::cookieless`]).
///
/// ```
/// use pulseline::User;
///
/// let known = User::id("user-42");
/// let visitor = User::anonymous("3f1c9c1e-anon");
/// let both = User::id("user-42").with_anonymous_id("3f1c9c1e-anon");
/// let from_str: User = "user-42".into();
/// # let _ = (known, visitor, both, from_str);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub(super) user_id: Option<String>,
    pub(super) anonymous_id: Option<String>,
    pub(super) cookieless: bool,
}

impl User {
    /// A user identified by your own stable id (`userId`).
    pub fn id(user_id: impl Into<String>) -> Self {
        User {
            user_id: Some(user_id.into()),
            anonymous_id: None,
            cookieless: false,
        }
    }

    /// A visitor not (yet) known by a user id (`anonymousId`).
    pub fn anonymous(anonymous_id: impl Into<String>) -> Self {
        User {
            user_id: None,
            anonymous_id: Some(anonymous_id.into()),
            cookieless: false,
        }
    }

    /// A visitor of a browser page in cookieless mode: no identifier is kept on the device, so
    /// the message may have no id at all. It must carry `context.cookieless = true` (the
    /// browser SDK sets it), from which the collector derives a visitor id that changes every
    /// day; the collector refuses a message with neither id nor that marker. Add a `userId`
    /// once the visitor logs in ([`User::with_user_id`]).
    ///
    /// ```
    /// use pulseline::User;
    ///
    /// let visitor = User::cookieless();
    /// let logged_in = User::cookieless().with_user_id("user-42");
    /// # let _ = (visitor, logged_in);
    /// ```
    pub fn cookieless() -> Self {
        User {
            user_id: None,
            anonymous_id: None,
            cookieless: true,
        }
    }

    /// The user of a binding's call, which takes both ids as optional arguments: `userId`,
    /// `anonymousId`, or both. With neither it is an [`Error::InvalidMessage`] (field `userId`)
    /// saying one is required. Whether the ids are empty or too long is checked at capture.
    ///
    /// ```
    /// use pulseline::User;
    ///
    /// assert_eq!(User::from_ids(Some("u1".into()), None)?, User::id("u1"));
    /// assert_eq!(User::from_ids(None, Some("a1".into()))?, User::anonymous("a1"));
    /// assert!(User::from_ids(None, None).is_err());
    /// # Ok::<(), pulseline::Error>(())
    /// ```
    pub fn from_ids(user_id: Option<String>, anonymous_id: Option<String>) -> Result<Self, Error> {
        if user_id.is_none() && anonymous_id.is_none() {
            return Err(invalid("userId", "or anonymousId is required"));
        }
        Ok(User {
            user_id,
            anonymous_id,
            cookieless: false,
        })
    }

    /// Sets the `userId` (your own stable id for the user).
    pub fn with_user_id(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// Adds an `anonymousId` next to the `userId`.
    pub fn with_anonymous_id(mut self, anonymous_id: impl Into<String>) -> Self {
        self.anonymous_id = Some(anonymous_id.into());
        self
    }
}

impl From<&str> for User {
    fn from(user_id: &str) -> Self {
        User::id(user_id)
    }
}

impl From<String> for User {
    fn from(user_id: String) -> Self {
        User::id(user_id)
    }
}

/// The fields every message type may carry besides who and what: when it happened, its
/// `messageId`, `context` and `integrations`. Each builder takes them one by one
/// ([`Track::timestamp`], …) or all at once with `fields`, which is how the Python and Node
/// bindings apply their shared arguments to any message type.
///
/// ```
/// use pulseline::{MessageFields, Track};
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let mut fields = MessageFields::default();
/// fields.timestamp = Some(UNIX_EPOCH + Duration::from_secs(1_767_225_600));
/// fields.message_id = Some("order-1042".into());
/// let client = pulseline::testing::test_client();
/// let id = client.track(Track::new("user-42", "order_paid").fields(fields))?;
/// assert_eq!(id, "order-1042");
/// # Ok::<(), pulseline::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct MessageFields {
    /// When the event happened; `None`: the moment of capture.
    pub timestamp: Option<SystemTime>,
    /// The `messageId`; `None`: a fresh UUIDv7. See [`MessageId`].
    pub message_id: Option<MessageId>,
    /// Entries added to `context` (`context.library` is the SDK's and is not overridden).
    pub context: Option<Map<String, Value>>,
    /// The `integrations` object.
    pub integrations: Option<Map<String, Value>>,
    pub(super) context_json: Option<crate::RawJson>,
}

impl MessageFields {
    /// Sets each field `other` has, keeping the others.
    fn merge(&mut self, other: MessageFields) {
        let MessageFields {
            timestamp,
            message_id,
            context,
            integrations,
            context_json,
        } = other;
        if timestamp.is_some() {
            self.timestamp = timestamp;
        }
        if message_id.is_some() {
            self.message_id = message_id;
        }
        if context.is_some() {
            self.context = context;
            self.context_json = None;
        }
        if context_json.is_some() {
            self.context_json = context_json;
            self.context = None;
        }
        if integrations.is_some() {
            self.integrations = integrations;
        }
    }
}

pub(super) type Common = MessageFields;

macro_rules! common_setters {
    () => {
        /// Sets when the event happened (default: the moment of capture). Use it for backfills.
        pub fn timestamp(mut self, at: impl Into<SystemTime>) -> Self {
            self.common.timestamp = Some(at.into());
            self
        }

        /// Uses your own `messageId` instead of a fresh UUIDv7, e.g. to make a backfill
        /// idempotent: the collector stores each `messageId` once per project. Any non-empty
        /// string of up to [`MAX_MESSAGE_ID_CHARS`](crate::limits::MAX_MESSAGE_ID_CHARS)
        /// characters, or a [`Uuid`](crate::Uuid) (see [`MessageId`]).
        pub fn message_id(mut self, id: impl Into<MessageId>) -> Self {
            self.common.message_id = Some(id.into());
            self
        }

        /// Adds entries to the message's `context` (ip, locale, page, campaign, …).
        ///
        /// `context.library` is always set by the SDK and cannot be overridden here.
        pub fn context(mut self, context: Map<String, Value>) -> Self {
            self.common.context = Some(context);
            self.common.context_json = None;
            self
        }

        /// Sets the message's `context` from the JSON text of an object, for callers that
        /// hold it serialized already (the browser SDK builds it with `JSON.stringify`). It
        /// replaces [`context`](Self::context). `context.library` is the SDK's: an object with
        /// a top-level `library` member is refused at capture.
        pub fn context_json(mut self, context: crate::RawJson) -> Self {
            self.common.context_json = Some(context);
            self.common.context = None;
            self
        }

        /// Sets the message's `integrations` object (Segment destination switches).
        pub fn integrations(mut self, integrations: Map<String, Value>) -> Self {
            self.common.integrations = Some(integrations);
            self
        }

        /// Sets every field that `fields` has (see [`MessageFields`]), keeping the others.
        pub fn fields(mut self, fields: MessageFields) -> Self {
            self.common.merge(fields);
            self
        }
    };
}

/// A `track` message: something a user did.
///
/// ```
/// use pulseline::{Track, User};
/// use serde_json::json;
///
/// let msg = Track::new(User::id("user-42"), "signup")
///     .properties(json!({ "plan": "pro", "seats": 3 }));
/// # let _ = msg;
/// ```
///
/// Properties can be any `Serialize` type that serializes to a JSON object, including your own
/// structs; they are serialized straight into the message without an intermediate `Value`.
/// Already-serialized JSON goes in as [`RawJson`](crate::RawJson).
#[derive(Debug, Clone)]
pub struct Track<P = ()> {
    pub(super) user: User,
    pub(super) event: String,
    pub(super) properties: Option<P>,
    pub(super) common: Common,
}

impl Track {
    /// A `track` of `event` by `user`.
    pub fn new(user: impl Into<User>, event: impl Into<String>) -> Self {
        Track {
            user: user.into(),
            event: event.into(),
            properties: None,
            common: Common::default(),
        }
    }
}

impl<P> Track<P> {
    /// Sets `properties`; must serialize to a JSON object.
    pub fn properties<Q: ToJson>(self, properties: Q) -> Track<Q> {
        Track {
            user: self.user,
            event: self.event,
            properties: Some(properties),
            common: self.common,
        }
    }

    common_setters!();
}

/// An `identify` message: who a user is (traits such as email or plan).
///
/// ```
/// use pulseline::{Identify, User};
/// use serde_json::json;
///
/// let msg = Identify::new(User::id("user-42")).traits(json!({ "email": "ada@example.com" }));
/// # let _ = msg;
/// ```
#[derive(Debug, Clone)]
pub struct Identify<T = ()> {
    pub(super) user: User,
    pub(super) traits: Option<T>,
    pub(super) common: Common,
}

impl Identify {
    /// An `identify` of `user`.
    pub fn new(user: impl Into<User>) -> Self {
        Identify {
            user: user.into(),
            traits: None,
            common: Common::default(),
        }
    }
}

impl<T> Identify<T> {
    /// Sets `traits`; must serialize to a JSON object.
    pub fn traits<Q: ToJson>(self, traits: Q) -> Identify<Q> {
        Identify {
            user: self.user,
            traits: Some(traits),
            common: self.common,
        }
    }

    common_setters!();
}

macro_rules! named_view {
    ($(#[$doc:meta])* $ty:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $ty<P = ()> {
            pub(super) user: User,
            pub(super) name: Option<String>,
            pub(super) properties: Option<P>,
            pub(super) common: Common,
        }

        impl $ty {
            #[doc = concat!("A `", $kind, "` view by `user`.")]
            pub fn new(user: impl Into<User>) -> Self {
                $ty { user: user.into(), name: None, properties: None, common: Common::default() }
            }
        }

        impl<P> $ty<P> {
            #[doc = concat!("Sets the ", $kind, "'s `name`.")]
            pub fn name(mut self, name: impl Into<String>) -> Self {
                self.name = Some(name.into());
                self
            }

            /// Sets `properties`; must serialize to a JSON object.
            pub fn properties<Q: ToJson>(self, properties: Q) -> $ty<Q> {
                $ty { user: self.user, name: self.name, properties: Some(properties), common: self.common }
            }

            common_setters!();
        }
    };
}

named_view!(
    /// A `page` message: a web page view.
    ///
    /// ```
    /// use pulseline::{Page, User};
    /// use serde_json::json;
    ///
    /// let msg = Page::new(User::anonymous("anon-1")).name("Pricing").properties(json!({ "path": "/pricing" }));
    /// # let _ = msg;
    /// ```
    Page,
    "page"
);

named_view!(
    /// A `screen` message: a mobile or desktop app screen view.
    ///
    /// ```
    /// use pulseline::{Screen, User};
    ///
    /// let msg = Screen::new(User::id("user-42")).name("Settings");
    /// # let _ = msg;
    /// ```
    Screen,
    "screen"
);

/// A `group` message: ties a user to a company, team or account.
///
/// ```
/// use pulseline::{Group, User};
/// use serde_json::json;
///
/// let msg = Group::new(User::id("user-42"), "acme-inc").traits(json!({ "name": "Acme", "plan": "enterprise" }));
/// # let _ = msg;
/// ```
#[derive(Debug, Clone)]
pub struct Group<T = ()> {
    pub(super) user: User,
    pub(super) group_id: String,
    pub(super) traits: Option<T>,
    pub(super) common: Common,
}

impl Group {
    /// Puts `user` in the group `group_id`.
    pub fn new(user: impl Into<User>, group_id: impl Into<String>) -> Self {
        Group {
            user: user.into(),
            group_id: group_id.into(),
            traits: None,
            common: Common::default(),
        }
    }
}

impl<T> Group<T> {
    /// Sets the group's `traits`; must serialize to a JSON object.
    pub fn traits<Q: ToJson>(self, traits: Q) -> Group<Q> {
        Group {
            user: self.user,
            group_id: self.group_id,
            traits: Some(traits),
            common: self.common,
        }
    }

    common_setters!();
}

/// An `alias` message: merges a previous identity (`previousId`) into `userId`.
///
/// ```
/// use pulseline::Alias;
///
/// let msg = Alias::new("user-42", "anon-3f1c");
/// # let _ = msg;
/// ```
#[derive(Debug, Clone)]
pub struct Alias {
    pub(super) user_id: String,
    pub(super) previous_id: String,
    pub(super) common: Common,
}

impl Alias {
    /// Declares that `previous_id` and `user_id` are the same person.
    pub fn new(user_id: impl Into<String>, previous_id: impl Into<String>) -> Self {
        Alias {
            user_id: user_id.into(),
            previous_id: previous_id.into(),
            common: Common::default(),
        }
    }

    common_setters!();
}

//! Who the visitor is: a persistent `anonymousId` and, after `identify`, a `userId`.
//!
//! Both live in `localStorage` (keys `pulseline:anonymousId` and `pulseline:userId`), so they
//! survive reloads and navigations on the same origin; without storage they last for the page.
//! In cookieless mode nothing is read or written: there is no `anonymousId` at all (the
//! collector derives a daily visitor id), and a `userId` lasts for the page.

use pulseline::{User, Uuid};

use crate::storage;

const ANONYMOUS_ID_KEY: &str = "pulseline:anonymousId";
const USER_ID_KEY: &str = "pulseline:userId";

#[derive(Debug)]
pub(crate) struct Identity {
    anonymous_id: Option<String>,
    user_id: Option<String>,
    /// Kept in `localStorage` (false in cookieless mode).
    stored: bool,
}

impl Identity {
    /// The stored identity, creating (and storing) an `anonymousId` on a first visit; in
    /// cookieless mode an identity without ids that touches no storage.
    pub(crate) fn load(cookieless: bool) -> Self {
        if cookieless {
            return Identity {
                anonymous_id: None,
                user_id: None,
                stored: false,
            };
        }
        let storage = storage::local();
        let get = |key| storage.as_ref()?.get_item(key).ok().flatten();
        let anonymous_id = get(ANONYMOUS_ID_KEY)
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| {
                let id = Uuid::now_v7().to_string();
                set(ANONYMOUS_ID_KEY, Some(&id));
                id
            });
        let user_id = get(USER_ID_KEY).filter(|id| !id.is_empty());
        Identity {
            anonymous_id: Some(anonymous_id),
            user_id,
            stored: true,
        }
    }

    pub(crate) fn anonymous_id(&self) -> Option<&str> {
        self.anonymous_id.as_deref()
    }

    pub(crate) fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// The user every message is about: the `anonymousId` (none in cookieless mode), plus the
    /// `userId` once known.
    pub(crate) fn user(&self) -> User {
        let user = match &self.anonymous_id {
            Some(anonymous_id) => User::anonymous(anonymous_id),
            None => User::cookieless(),
        };
        match &self.user_id {
            Some(user_id) => user.with_user_id(user_id),
            None => user,
        }
    }

    pub(crate) fn set_user_id(&mut self, user_id: &str) {
        if self.stored {
            set(USER_ID_KEY, Some(user_id));
        }
        self.user_id = Some(user_id.to_owned());
    }

    /// Forgets the user and starts a new anonymous visitor (on logout).
    pub(crate) fn reset(&mut self) {
        self.user_id = None;
        if self.stored {
            set(USER_ID_KEY, None);
            let id = Uuid::now_v7().to_string();
            set(ANONYMOUS_ID_KEY, Some(&id));
            self.anonymous_id = Some(id);
        }
    }
}

fn set(key: &str, value: Option<&str>) {
    if let Some(storage) = storage::local() {
        // Storage full or blocked: the id still holds for this page.
        let _ = match value {
            Some(value) => storage.set_item(key, value),
            None => storage.remove_item(key),
        };
    }
}

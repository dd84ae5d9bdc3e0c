//! Who the visitor is: a persistent `anonymousId` and, after `identify`, a `userId`.
//!
//! Both live in `localStorage` (keys `pulseline:anonymousId` and `pulseline:userId`), so they
//! survive reloads and navigations on the same origin; without storage they last for the page.

use pulseline::{Uuid, User};

use crate::storage;

const ANONYMOUS_ID_KEY: &str = "pulseline:anonymousId";
const USER_ID_KEY: &str = "pulseline:userId";

#[derive(Debug)]
pub(crate) struct Identity {
    anonymous_id: String,
    user_id: Option<String>,
}

impl Identity {
    /// The stored identity, creating (and storing) an `anonymousId` on a first visit.
    pub(crate) fn load() -> Self {
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
            anonymous_id,
            user_id,
        }
    }

    pub(crate) fn anonymous_id(&self) -> &str {
        &self.anonymous_id
    }

    pub(crate) fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// The user every message is about: the `anonymousId`, plus the `userId` once known.
    pub(crate) fn user(&self) -> User {
        match &self.user_id {
            Some(user_id) => User::id(user_id).with_anonymous_id(&self.anonymous_id),
            None => User::anonymous(&self.anonymous_id),
        }
    }

    pub(crate) fn set_user_id(&mut self, user_id: &str) {
        set(USER_ID_KEY, Some(user_id));
        self.user_id = Some(user_id.to_owned());
    }

    /// Forgets the user and starts a new anonymous visitor (on logout).
    pub(crate) fn reset(&mut self) {
        set(USER_ID_KEY, None);
        self.user_id = None;
        self.anonymous_id = Uuid::now_v7().to_string();
        set(ANONYMOUS_ID_KEY, Some(&self.anonymous_id));
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

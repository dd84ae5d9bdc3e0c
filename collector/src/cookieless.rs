//! Cookieless visitor ids (docs/privacy.md, "Cookieless mode"): a browser in cookieless mode
//! stores no identifier and sends messages with neither `userId` nor `anonymousId` and with
//! `context.cookieless = true`. The collector names the visitor
//! `ck_` + the first 32 hex digits of SHA-256(daily salt || project id || client IP || user agent),
//! Plausible's method. The salt is random, one per UTC day, shared by every replica through the
//! store, and deleted once its day is over, so a visitor cannot be followed from one day to the
//! next, by us or by anyone holding the database.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, NaiveDate, Utc};
use sha2::{Digest, Sha256};

use crate::domain::ProjectId;
use crate::store::{Store, StoreError};

/// Bytes of a daily salt.
pub const SALT_BYTES: usize = 32;

/// What every derived visitor id starts with, so it is told apart from ids an SDK made.
pub const VISITOR_ID_PREFIX: &str = "ck_";

/// Today's salt, cached in memory: ingest reads the store once per day per replica, and each
/// cookieless message then costs one hash.
#[derive(Debug, Clone, Default)]
pub struct DailySalt(Arc<RwLock<Option<DaySalt>>>);

/// A day and its salt.
type DaySalt = (NaiveDate, [u8; SALT_BYTES]);

impl DailySalt {
    /// The salt of `now`'s UTC day. The first replica to need it creates it in the store (and
    /// deletes the earlier days'); the others read that one, so all derive the same ids.
    pub async fn for_day(
        &self,
        store: &Store,
        now: DateTime<Utc>,
    ) -> Result<[u8; SALT_BYTES], StoreError> {
        let day = now.date_naive();
        if let Some((cached, salt)) = *self.0.read().unwrap_or_else(|e| e.into_inner())
            && cached == day
        {
            return Ok(salt);
        }
        let salt = store.daily_salt(day, rand::random()).await?;
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some((day, salt));
        Ok(salt)
    }
}

/// The visitor id of a cookieless message. Each part has a fixed width or comes last (project
/// id as 8 big-endian bytes, the IP as 16 bytes, IPv4 mapped into IPv6), so no two different
/// inputs hash the same bytes. A request without a known address hashes `::`.
pub fn visitor_id(
    salt: &[u8; SALT_BYTES],
    project: ProjectId,
    ip: Option<IpAddr>,
    user_agent: &str,
) -> String {
    let ip = match ip {
        Some(IpAddr::V4(v4)) => v4.to_ipv6_mapped(),
        Some(IpAddr::V6(v6)) => v6,
        None => Ipv6Addr::UNSPECIFIED,
    };
    let mut hash = Sha256::new();
    hash.update(salt);
    hash.update(project.to_be_bytes());
    hash.update(ip.octets());
    hash.update(user_agent.as_bytes());
    let digest = hash.finalize();
    let mut id = String::with_capacity(VISITOR_ID_PREFIX.len() + 32);
    id.push_str(VISITOR_ID_PREFIX);
    for byte in &digest[..16] {
        use std::fmt::Write;
        let _ = write!(id, "{byte:02x}");
    }
    id
}

/// Whether any message of a request may be a cookieless one: a substring check, so requests
/// without cookieless messages never wait for the salt.
pub fn may_have_cookieless(raws: &[&serde_json::value::RawValue]) -> bool {
    raws.iter().any(|raw| raw.get().contains("\"cookieless\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_depend_on_every_input_and_have_the_contract_shape() {
        let salt = [7u8; SALT_BYTES];
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let id = visitor_id(&salt, 1, Some(ip), "Mozilla/5.0");
        assert_eq!(id.len(), 3 + 32);
        assert!(id.starts_with("ck_"));
        assert!(
            id[3..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_eq!(id, visitor_id(&salt, 1, Some(ip), "Mozilla/5.0"));
        assert_ne!(
            id,
            visitor_id(&[8u8; SALT_BYTES], 1, Some(ip), "Mozilla/5.0")
        );
        assert_ne!(id, visitor_id(&salt, 2, Some(ip), "Mozilla/5.0"));
        assert_ne!(
            id,
            visitor_id(
                &salt,
                1,
                Some("203.0.113.10".parse().unwrap()),
                "Mozilla/5.0"
            )
        );
        assert_ne!(id, visitor_id(&salt, 1, Some(ip), "Mozilla/5.1"));
    }
}

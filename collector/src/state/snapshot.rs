//! An in-memory copy of database rows that more than one task reloads: the periodic refresh
//! (for changes made through other replicas) and the API right after a change made through
//! this one. A reload that began reading before the change must not overwrite one that began
//! after it, or the change would be undone until the next refresh: an event category missing
//! for the events sent right after it was made, a suppressed person's events stored again.

use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The copy, and the order its reloads began in.
#[derive(Debug, Default)]
pub struct Snapshot<T> {
    /// The copy and the number of the reload that installed it.
    current: RwLock<(u64, T)>,
    /// Reloads begun so far.
    begun: AtomicU64,
}

/// A reload under way: its place in the order reloads began.
#[must_use = "a reload is installed with `Snapshot::finish`"]
#[derive(Debug)]
pub struct Reload(u64);

impl<T> Snapshot<T> {
    /// Takes a place in line; call it before reading the database.
    pub fn begin(&self) -> Reload {
        Reload(self.begun.fetch_add(1, Ordering::SeqCst) + 1)
    }

    /// Installs `value`, read by `reload`, unless a reload that began later has installed its
    /// own already (then this one's rows may predate a change that one saw). Whether it did.
    pub fn finish(&self, reload: Reload, value: T) -> bool {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if reload.0 <= current.0 {
            return false;
        }
        *current = (reload.0, value);
        true
    }

    /// Reads the copy.
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.current.read().unwrap_or_else(|e| e.into_inner()).1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_that_began_earlier_does_not_overwrite_a_later_one() {
        let s: Snapshot<&str> = Snapshot::default();
        let stale = s.begin();
        let fresh = s.begin();
        assert!(s.finish(fresh, "after the change"));
        assert!(!s.finish(stale, "before the change"));
        assert_eq!(s.with(|v| *v), "after the change");
    }

    #[test]
    fn reloads_that_finish_in_order_each_install_their_rows() {
        let s: Snapshot<u32> = Snapshot::default();
        for n in 1..4 {
            let r = s.begin();
            assert!(s.finish(r, n));
            assert_eq!(s.with(|v| *v), n);
        }
    }
}

//! Fork support: a child process gets a working client and sends nothing its parent captured.
//!
//! `fork()` copies the parent's memory into the child but only the thread that forked: the
//! child inherits the client's queue (messages the parent will deliver itself), a worker that
//! no longer exists, locks that worker may have held at that instant, and file descriptors of
//! the parent's disk-buffer segments, whose `flock` the child then shares. Nothing of that may
//! be used, dropped or unlocked in the child. [`Client::reinitialize_after_fork`] leaves it all
//! untouched (leaked), closes the inherited segment descriptors so the parent's files become
//! replayable by others as soon as the parent releases them, reseeds the random generators the
//! child inherited (they would otherwise produce the parent's `messageId`s and disk-buffer
//! writer ids), and builds a fresh client from the original settings.

// Without a worker thread there is nothing to rebuild after a fork; the recipe stays unused.
#![cfg_attr(not(feature = "worker-thread"), allow(dead_code, unused_imports))]

use std::sync::Arc;

use crate::{Client, ClientOptions, Clock, Error, Transport};

/// Everything [`ClientBuilder`](crate::ClientBuilder) was given, kept to build the client again.
#[derive(Clone)]
pub(crate) struct Recipe {
    pub(crate) write_key: String,
    pub(crate) options: ClientOptions,
    pub(crate) transport: Option<Arc<dyn Transport>>,
    pub(crate) clock: Option<Arc<dyn Clock>>,
}

impl std::fmt::Debug for Recipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recipe")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Call in a child process right after `fork()`, on the thread that forked (e.g. from a
    /// `pthread_atfork` child handler or Python's `os.register_at_fork(after_in_child=…)`):
    /// returns a new client with the same settings and its own worker, and abandons this one.
    ///
    /// * Messages the parent captured before the fork stay the parent's to deliver: the child
    ///   never sends them, from memory or from the parent's disk-buffer files (which stay locked
    ///   by the parent until it has delivered or released them).
    /// * This handle is consumed and leaked, never dropped, because dropping it would talk to a
    ///   worker that does not exist in the child or take a lock held at the instant of the
    ///   fork. Other clones of it in the child are just as unusable (their `flush` would wait for
    ///   that missing worker); replace them with clones of the returned client.
    /// * A transport or clock given to the builder is shared with the new client; the default
    ///   HTTP transport is built anew, since its pooled connections are the parent's sockets.
    ///
    /// Requires the `worker-thread` feature. Closing the inherited segment descriptors is
    /// implemented for Linux (elsewhere they stay open, and the parent's files remain locked
    /// until the child exits).
    #[cfg(feature = "worker-thread")]
    pub fn reinitialize_after_fork(self) -> Result<Client, Error> {
        self.reinitialize_after_fork_with(|_| {})
    }

    /// [`reinitialize_after_fork`](Client::reinitialize_after_fork), letting `configure` change
    /// the copied options first: typically to install new [`on_error`](ClientOptions::on_error)
    /// and [`on_drop`](ClientOptions::on_drop) hooks when the old ones feed something that did
    /// not survive the fork (a channel read by a thread of the parent).
    #[cfg(feature = "worker-thread")]
    pub fn reinitialize_after_fork_with(
        self,
        configure: impl FnOnce(&mut ClientOptions),
    ) -> Result<Client, Error> {
        let mut recipe = self.recipe().clone();
        let opted_out = self.is_opted_out();
        std::mem::forget(self);
        configure(&mut recipe.options);
        reseed_inherited_rngs();
        #[cfg(all(feature = "disk-buffer", target_os = "linux"))]
        close_inherited_segment_files();
        let mut builder = Client::builder(recipe.write_key).options(recipe.options);
        builder.transport = recipe.transport;
        builder.clock = recipe.clock;
        let client = builder.build()?;
        // The user's opt-out is run-time state, not an option: the child inherits it too.
        if opted_out {
            client.opt_out();
        }
        Ok(client)
    }
}

/// The child's generators are byte-for-byte copies of the parent's: reseed the forking thread's
/// (the only thread in the child; threads started later seed their own from the OS).
fn reseed_inherited_rngs() {
    if let Err(err) = rand::rng().reseed() {
        tracing::error!(%err, "could not reseed the random generator after fork");
    }
    if let Err(err) = uuid_rand::rng().reseed() {
        tracing::error!(%err, "could not reseed the messageId generator after fork");
    }
}

/// Closes, once per process, every descriptor the child inherited on a disk-buffer segment
/// file. Closing (unlike `flock(LOCK_UN)`) does not release the parent's lock; it only stops
/// the child from sharing it.
#[cfg(all(feature = "disk-buffer", target_os = "linux"))]
fn close_inherited_segment_files() {
    use std::sync::atomic::{AtomicU32, Ordering};

    // Later calls in the same child (one per client) must not close segments that a client
    // rebuilt by an earlier call has opened since.
    static CLEANED_IN: AtomicU32 = AtomicU32::new(0);
    let pid = std::process::id();
    if CLEANED_IN.swap(pid, Ordering::AcqRel) == pid {
        return;
    }
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let inherited: Vec<i32> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let fd: i32 = entry.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(entry.path()).ok()?;
            let name = target.file_name()?.to_str()?;
            crate::disk::is_segment_file_name(name.trim_end_matches(" (deleted)")).then_some(fd)
        })
        .collect();
    for fd in inherited {
        close_leaked_fd(fd);
    }
}

#[cfg(all(feature = "disk-buffer", target_os = "linux"))]
#[allow(unsafe_code)]
fn close_leaked_fd(fd: i32) {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: `fd` is a segment file opened by a disk buffer of the parent's clients. In the
    // child those clients were leaked by `reinitialize_after_fork` (their worker does not exist
    // here), so nothing will read, write or close this descriptor again; taking ownership and
    // dropping it closes it exactly once.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(feature = "disk-buffer")]
    fn recognises_only_segment_file_names() {
        use crate::disk::is_segment_file_name;
        assert!(is_segment_file_name(
            "1767225600123-00ff00ff00ff00ff-000003.seg"
        ));
        assert!(!is_segment_file_name("1767225600123-00ff00ff00ff00ff.seg"));
        assert!(!is_segment_file_name("notes.seg"));
        assert!(!is_segment_file_name(
            "1767225600123-00ff00ff00ff00ff-000003.log"
        ));
    }
}

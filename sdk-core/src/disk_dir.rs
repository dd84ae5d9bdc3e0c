//! Where the disk buffer lives, and that only this user can read or plant files there.
//!
//! Buffered events are the application's data, so the default directory is per user (the
//! platform's cache directory, e.g. `~/.cache/pulseline/<hash>` on Linux), created `0700`, with
//! segment files `0600`. A directory owned by another user is refused: they could read what
//! is buffered, or plant batches to be sent with this client's key. The client then keeps
//! events in memory and reports [`Error::Disk`] saying why.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

use crate::Error;

/// `<cache dir>/pulseline/<FNV-1a of host and write key>`: stable across restarts, distinct
/// per project and collector, private to this user. Without a cache directory (no home), a
/// per-user directory in the temp directory, checked the same way.
pub(crate) fn default_directory(host: &str, write_key: &str) -> Result<PathBuf, Error> {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in host.bytes().chain([0]).chain(write_key.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let root = dirs::cache_dir().map_or_else(
        || std::env::temp_dir().join(format!("pulseline-{}", user_suffix())),
        |cache| cache.join("pulseline"),
    );
    let dir = root.join(format!("{hash:016x}"));
    prepare(&dir, &root, true)?;
    Ok(dir)
}

/// Creates `dir` and checks that every directory from `private_root` down to it belongs to
/// this user, one level at a time, so nothing is created inside another user's directory.
/// New directories are `0700`. `tighten`: they are ours alone, so looser permissions are
/// narrowed to `0700` (an explicit directory's are left as its owner set them).
pub(crate) fn prepare(dir: &Path, private_root: &Path, tighten: bool) -> Result<(), Error> {
    let failed = |path: &Path, source: io::Error| Error::Disk {
        path: path.to_owned(),
        source,
    };
    if let Some(above) = private_root.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(above).map_err(|e| failed(above, e))?;
    }
    let mut levels: Vec<&Path> = dir
        .ancestors()
        .take_while(|p| p.starts_with(private_root))
        .collect();
    levels.reverse();
    for path in levels {
        match create_private(path) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(failed(path, e)),
            _ => {}
        }
        check_owner(path, tighten).map_err(|e| failed(path, e))?;
    }
    Ok(())
}

#[cfg(unix)]
fn create_private(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private(dir: &Path) -> io::Result<()> {
    fs::create_dir(dir)
}

#[cfg(unix)]
fn check_owner(path: &Path, tighten: bool) -> io::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let me = rustix::process::geteuid().as_raw();
    // The link itself and what it points to: a link planted by someone else is refused too.
    for meta in [fs::symlink_metadata(path)?, fs::metadata(path)?] {
        if meta.uid() != me {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "owned by uid {}, not by this user (uid {me}): another local user could read \
                     the buffered events or plant some. Remove it, or set the disk buffer \
                     directory to one of yours; meanwhile events are kept in memory only",
                    meta.uid()
                ),
            ));
        }
    }
    let mode = fs::metadata(path)?.permissions().mode();
    if tighten && mode & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_owner(_path: &Path, _tighten: bool) -> io::Result<()> {
    // Elsewhere the per-user profile's ACLs keep the cache directory private.
    Ok(())
}

#[cfg(unix)]
fn user_suffix() -> String {
    rustix::process::geteuid().as_raw().to_string()
}

#[cfg(not(unix))]
fn user_suffix() -> String {
    std::env::var("USERNAME").unwrap_or_else(|_| "user".into())
}

//! `localStorage`, when the page has one (not in Node, not when the user blocks storage).

/// The page's `localStorage`, or `None` where there is none or it is blocked.
pub(crate) fn local() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// Every key that starts with `prefix`.
pub(crate) fn keys_with_prefix(storage: &web_sys::Storage, prefix: &str) -> Vec<String> {
    let len = storage.length().unwrap_or(0);
    (0..len)
        .filter_map(|i| storage.key(i).ok().flatten())
        .filter(|key| key.starts_with(prefix))
        .collect()
}

//! Promises settled by a Rust future without holding a thread of the caller's while they wait.
//!
//! `flush()` and `shutdown()` wait for the core's worker thread to answer. libuv's thread pool
//! (an `AsyncTask`) would hold one of its four threads per pending call, and the customer's
//! `fs`, `dns.lookup` and `zlib` calls would queue behind them. Instead every pending call is
//! a future on one executor thread of this addon, which resolves the promise through its
//! threadsafe function; any number of pending calls costs that one thread.

use std::sync::OnceLock;

use futures::{
    StreamExt,
    channel::mpsc::{UnboundedSender, unbounded},
    future::BoxFuture,
};

static EXECUTOR: OnceLock<Option<UnboundedSender<BoxFuture<'static, ()>>>> = OnceLock::new();

/// Runs `future` on the executor thread, then `done` with its output (on that thread). Fails
/// only if the executor thread could not be started.
pub(crate) fn when_ready<F, D>(future: F, done: D) -> napi::Result<()>
where
    F: std::future::Future + Send + 'static,
    D: FnOnce(F::Output) + Send + 'static,
{
    let executor = EXECUTOR.get_or_init(|| {
        let (sender, receiver) = unbounded::<BoxFuture<'static, ()>>();
        std::thread::Builder::new()
            .name("pulseline-promises".into())
            .spawn(move || {
                futures::executor::block_on(receiver.for_each_concurrent(None, |task| task));
            })
            .ok()
            .map(|_| sender)
    });
    let task = Box::pin(async move { done(future.await) });
    match executor.as_ref().map(|e| e.unbounded_send(task)) {
        Some(Ok(())) => Ok(()),
        _ => Err(napi::Error::from_reason(
            "pulseline: could not start the thread that waits for flush() and shutdown()",
        )),
    }
}

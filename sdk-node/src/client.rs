//! `Client`: the core client behind a JavaScript class. Capture methods convert their message
//! object on the calling (JavaScript) thread and hand it to the core's worker thread, which
//! never touches JavaScript; `flush`/`shutdown` return promises that the worker's reply
//! resolves (`settle.rs`), holding neither the event loop nor libuv's thread pool while they
//! wait; the `*Sync` variants block, for the `exit` hook.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use futures::{
    FutureExt,
    future::{BoxFuture, Shared},
};
use napi::{
    Env, JsValue, Status,
    bindgen_prelude::{FnArgs, Object, Unknown},
    threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode},
};
use napi_derive::napi;
use pulseline::{Alias, Group, Identify, Page, Screen, Track};

use crate::{
    convert::{Converter, FailureKind},
    error::{ErrorSpec, conversion_error, pending_exception},
    message::{ALIAS, Fields, GROUP, IDENTIFY, Kind, PAGE, SCREEN, TRACK, napi_or_spec::Failed},
    options::{ClientOptions, millis},
    stats::{FlushResult, ShutdownResult, Stats},
};

/// `flush()` without a timeout: until everything is resolved (the retry budget bounds it).
const NO_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

type ErrorCallback = ThreadsafeFunction<ErrorSpec, (), ErrorSpec, Status, false, true>;
type DropCallback =
    ThreadsafeFunction<FnArgs<(String, f64)>, (), FnArgs<(String, f64)>, Status, false, true>;

/// Sends analytics events to a Pulseline (or any Segment-compatible) collector.
///
/// Capture methods check the message at once (a few hundred nanoseconds), keep a copy, and
/// hand it to a background thread at the end of the tick: they never wait for the network and never throw because it is
/// down. The background thread does not keep the process alive. Before the process exits,
/// the client flushes (on `beforeExit`, and synchronously on `process.exit()` and SIGTERM),
/// bounded by `shutdownTimeout`; undelivered events stay in the disk buffer for the next run.
///
/// ```js
/// const { Client } = require('pulseline')
/// const client = new Client({ writeKey: 'plw_...', host: 'http://127.0.0.1:8080' })
/// client.track({ userId: 'user-42', event: 'signup', properties: { plan: 'pro' } })
/// await client.shutdown()
/// ```
#[napi]
#[derive(Debug)]
pub struct Client {
    core: Arc<pulseline::Client>,
    shutdown_timeout: Duration,
    flush_on_exit: bool,
    /// The first shutdown, which every later `shutdown()` call waits for and reports.
    shutdown: Mutex<Option<Shared<BoxFuture<'static, pulseline::ShutdownOutcome>>>>,
}

#[napi]
impl Client {
    /// Creates a client; only `writeKey` is required. Throws a `TypeError`/`RangeError` with
    /// `code: 'PULSELINE_CONFIG'` for invalid options.
    #[napi(constructor, ts_args_type = "options: ClientOptions")]
    pub fn new(env: Env, options: Unknown) -> napi::Result<Self> {
        let parsed = ClientOptions::from_unknown(options)
            .and_then(ClientOptions::parse)
            .map_err(|e| e.into_napi(&env))?;
        let mut builder = pulseline::Client::builder(parsed.write_key).options(parsed.core);
        if let Some(f) = parsed.on_error {
            let tsfn: ErrorCallback = f
                .borrow_back(&env)?
                .build_threadsafe_function::<ErrorSpec>()
                .callee_handled::<false>()
                .weak::<true>()
                .build()?;
            builder = builder.on_error(move |e| {
                tsfn.call(ErrorSpec::from(e), ThreadsafeFunctionCallMode::NonBlocking);
            });
        }
        if let Some(f) = parsed.on_drop {
            let tsfn: DropCallback = f
                .borrow_back(&env)?
                .build_threadsafe_function::<FnArgs<(String, f64)>>()
                .callee_handled::<false>()
                .weak::<true>()
                .build()?;
            builder = builder.on_drop(move |reason, count| {
                let args = FnArgs::from((reason.as_str().to_owned(), count as f64));
                tsfn.call(args, ThreadsafeFunctionCallMode::NonBlocking);
            });
        }
        let core = Arc::new(
            builder
                .build()
                .map_err(|e| ErrorSpec::from(&e).into_napi(&env))?,
        );
        let shutdown_timeout = parsed.core_shutdown_timeout;
        Ok(Client {
            core,
            shutdown_timeout,
            flush_on_exit: parsed.flush_on_exit,
            shutdown: Mutex::new(None),
        })
    }

    /// Records that a user did something. Never waits for I/O. Throws a `TypeError` (`code:
    /// 'PULSELINE_INVALID_MESSAGE'` or `'PULSELINE_UNSUPPORTED_TYPE'`, with the offending
    /// `path`) for a message that can never be sent. A message dropped later (buffer full) is
    /// counted in `stats()` and reported to `onDrop`; captures after `shutdown` are ignored.
    /// Pass your own `messageId` to know an event's id.
    #[napi(ts_args_type = "message: TrackMessage", ts_return_type = "void")]
    #[allow(clippy::too_many_arguments)] // One per message field, passed by lib/index.js.
    pub fn track(
        &self,
        env: Env,
        user_id: Unknown,
        anonymous_id: Unknown,
        timestamp: Unknown,
        context: Unknown,
        integrations: Unknown,
        message_id: Unknown,
        event: Unknown,
        properties: Unknown,
    ) -> napi::Result<Option<String>> {
        let args = [
            user_id.raw(),
            anonymous_id.raw(),
            timestamp.raw(),
            context.raw(),
            integrations.raw(),
            message_id.raw(),
            event.raw(),
            properties.raw(),
        ];
        self.capture(&env, &args, TRACK, |core, user, mut f, cx| {
            let m = Track::new(user, f.event.take().unwrap_or_default());
            match f.payload {
                Some(p) => core.track(
                    m.fields(std::mem::take(&mut f.common))
                        .properties(cx.value(p)),
                ),
                None => core.track(m.fields(std::mem::take(&mut f.common))),
            }
        })
    }

    /// Records who a user is (`traits`). Never waits for I/O; errors as for `track`.
    #[napi(ts_args_type = "message: IdentifyMessage", ts_return_type = "void")]
    #[allow(clippy::too_many_arguments)] // One per message field, passed by lib/index.js.
    pub fn identify(
        &self,
        env: Env,
        user_id: Unknown,
        anonymous_id: Unknown,
        timestamp: Unknown,
        context: Unknown,
        integrations: Unknown,
        message_id: Unknown,
        traits: Unknown,
    ) -> napi::Result<Option<String>> {
        let args = [
            user_id.raw(),
            anonymous_id.raw(),
            timestamp.raw(),
            context.raw(),
            integrations.raw(),
            message_id.raw(),
            traits.raw(),
        ];
        self.capture(&env, &args, IDENTIFY, |core, user, mut f, cx| {
            let m = Identify::new(user);
            match f.payload {
                Some(p) => {
                    core.identify(m.fields(std::mem::take(&mut f.common)).traits(cx.value(p)))
                }
                None => core.identify(m.fields(std::mem::take(&mut f.common))),
            }
        })
    }

    /// Records a page view. Never waits for I/O; errors as for `track`.
    #[napi(ts_args_type = "message: PageMessage", ts_return_type = "void")]
    #[allow(clippy::too_many_arguments)] // One per message field, passed by lib/index.js.
    pub fn page(
        &self,
        env: Env,
        user_id: Unknown,
        anonymous_id: Unknown,
        timestamp: Unknown,
        context: Unknown,
        integrations: Unknown,
        message_id: Unknown,
        name: Unknown,
        properties: Unknown,
    ) -> napi::Result<Option<String>> {
        let args = [
            user_id.raw(),
            anonymous_id.raw(),
            timestamp.raw(),
            context.raw(),
            integrations.raw(),
            message_id.raw(),
            name.raw(),
            properties.raw(),
        ];
        self.capture(&env, &args, PAGE, |core, user, mut f, cx| {
            let mut m = Page::new(user);
            if let Some(name) = f.name.take() {
                m = m.name(name);
            }
            match f.payload {
                Some(p) => core.page(
                    m.fields(std::mem::take(&mut f.common))
                        .properties(cx.value(p)),
                ),
                None => core.page(m.fields(std::mem::take(&mut f.common))),
            }
        })
    }

    /// Records a mobile screen view. Never waits for I/O; errors as for `track`.
    #[napi(ts_args_type = "message: ScreenMessage", ts_return_type = "void")]
    #[allow(clippy::too_many_arguments)] // One per message field, passed by lib/index.js.
    pub fn screen(
        &self,
        env: Env,
        user_id: Unknown,
        anonymous_id: Unknown,
        timestamp: Unknown,
        context: Unknown,
        integrations: Unknown,
        message_id: Unknown,
        name: Unknown,
        properties: Unknown,
    ) -> napi::Result<Option<String>> {
        let args = [
            user_id.raw(),
            anonymous_id.raw(),
            timestamp.raw(),
            context.raw(),
            integrations.raw(),
            message_id.raw(),
            name.raw(),
            properties.raw(),
        ];
        self.capture(&env, &args, SCREEN, |core, user, mut f, cx| {
            let mut m = Screen::new(user);
            if let Some(name) = f.name.take() {
                m = m.name(name);
            }
            match f.payload {
                Some(p) => core.screen(
                    m.fields(std::mem::take(&mut f.common))
                        .properties(cx.value(p)),
                ),
                None => core.screen(m.fields(std::mem::take(&mut f.common))),
            }
        })
    }

    /// Records that a user belongs to a group (company, team, account). Never waits for I/O;
    /// errors as for `track`.
    #[napi(ts_args_type = "message: GroupMessage", ts_return_type = "void")]
    #[allow(clippy::too_many_arguments)] // One per message field, passed by lib/index.js.
    pub fn group(
        &self,
        env: Env,
        user_id: Unknown,
        anonymous_id: Unknown,
        timestamp: Unknown,
        context: Unknown,
        integrations: Unknown,
        message_id: Unknown,
        group_id: Unknown,
        traits: Unknown,
    ) -> napi::Result<Option<String>> {
        let args = [
            user_id.raw(),
            anonymous_id.raw(),
            timestamp.raw(),
            context.raw(),
            integrations.raw(),
            message_id.raw(),
            group_id.raw(),
            traits.raw(),
        ];
        self.capture(&env, &args, GROUP, |core, user, mut f, cx| {
            let m = Group::new(user, f.group_id.take().unwrap_or_default());
            match f.payload {
                Some(p) => core.group(m.fields(std::mem::take(&mut f.common)).traits(cx.value(p))),
                None => core.group(m.fields(std::mem::take(&mut f.common))),
            }
        })
    }

    /// Records that `previousId` and `userId` are the same person. Never waits for I/O;
    /// errors as for `track`.
    #[napi(ts_args_type = "message: AliasMessage", ts_return_type = "void")]
    #[allow(clippy::too_many_arguments)] // One per message field, passed by lib/index.js.
    pub fn alias(
        &self,
        env: Env,
        user_id: Unknown,
        anonymous_id: Unknown,
        timestamp: Unknown,
        context: Unknown,
        integrations: Unknown,
        message_id: Unknown,
        previous_id: Unknown,
    ) -> napi::Result<Option<String>> {
        let args = [
            user_id.raw(),
            anonymous_id.raw(),
            timestamp.raw(),
            context.raw(),
            integrations.raw(),
            message_id.raw(),
            previous_id.raw(),
        ];
        self.capture(&env, &args, ALIAS, |core, _user, mut f, _cx| {
            let m = Alias::new(
                f.user_id.take().unwrap_or_default(),
                f.previous_id.take().unwrap_or_default(),
            );
            core.alias(m.fields(std::mem::take(&mut f.common)))
        })
    }

    /// Sends everything captured so far and resolves when the collector has it (or it was
    /// dropped for a counted reason, or persisted to the disk buffer), or when `timeoutMs`
    /// passes. In serverless functions, `await client.flush()` before returning. A pending
    /// flush holds neither the event loop nor a thread of libuv's pool.
    #[napi(ts_return_type = "Promise<FlushResult>")]
    pub fn flush<'e>(&self, env: &'e Env, timeout_ms: Option<f64>) -> napi::Result<Object<'e>> {
        let timeout = self.timeout(env, timeout_ms, NO_TIMEOUT)?;
        let (deferred, promise) = env.create_deferred()?;
        crate::settle::when_ready(self.core.flush_async(timeout), move |outcome| {
            deferred.resolve(move |_| Ok(FlushResult::from(outcome)))
        })?;
        Ok(promise)
    }

    /// Stops capturing, delivers what it can within `timeoutMs` (default `shutdownTimeout`),
    /// persists the rest to the disk buffer, and stops the background thread. Later captures
    /// are ignored; a second call resolves with the first one's outcome, when it has one.
    #[napi(ts_return_type = "Promise<ShutdownResult>")]
    pub fn shutdown<'e>(&self, env: &'e Env, timeout_ms: Option<f64>) -> napi::Result<Object<'e>> {
        let timeout = self.timeout(env, timeout_ms, self.shutdown_timeout)?;
        let (deferred, promise) = env.create_deferred()?;
        crate::settle::when_ready(self.shutdown_once(timeout), move |outcome| {
            deferred.resolve(move |_| Ok(ShutdownResult::from(outcome)))
        })?;
        Ok(promise)
    }

    /// `flush` that blocks the JavaScript thread (default timeout `shutdownTimeout`): for
    /// `process.on('exit')` handlers, where nothing asynchronous runs any more.
    #[napi]
    pub fn flush_sync(&self, env: Env, timeout_ms: Option<f64>) -> napi::Result<FlushResult> {
        let timeout = self.timeout(&env, timeout_ms, self.shutdown_timeout)?;
        Ok(self.core.flush(timeout).into())
    }

    /// `shutdown` that blocks the JavaScript thread; what the `exit` hook calls.
    #[napi]
    pub fn shutdown_sync(&self, env: Env, timeout_ms: Option<f64>) -> napi::Result<ShutdownResult> {
        let timeout = self.timeout(&env, timeout_ms, self.shutdown_timeout)?;
        Ok(futures::executor::block_on(self.shutdown_once(timeout)).into())
    }

    /// Counts messages that `lib/index.js` dropped after their capture call returned (see its
    /// `#drain`), and reports them to `onDrop`.
    #[napi(skip_typescript)]
    pub fn record_dropped(&self, too_large: bool, count: u32) {
        let reason = match too_large {
            true => pulseline::DropReason::TooLarge,
            false => pulseline::DropReason::Unserializable,
        };
        self.core.record_dropped(reason, u64::from(count));
    }

    /// The fast capture path of `lib/index.js` (see `serialized.rs`): captures a JSON array of
    /// messages it has checked; returns a description of any that could not be captured.
    #[napi(skip_typescript)]
    pub fn capture_serialized(&self, json: String) -> Option<String> {
        crate::serialized::capture_all(&self.core, &json)
    }

    /// Delivery counters since the client was created.
    #[napi]
    pub fn stats(&self) -> Stats {
        self.core.stats().into()
    }

    /// Stops sending: later captures are still validated and return a `messageId`, but are
    /// dropped (counted as `opted_out` in `stats().dropped`) and reach neither the network nor
    /// the disk buffer. Messages captured before the call are still delivered. Not persisted:
    /// store the user's choice and call it again at start-up.
    #[napi]
    pub fn opt_out(&self) {
        self.core.opt_out();
    }

    /// Resumes sending after `optOut()`. A client created with `disabled: true` stays disabled.
    #[napi]
    pub fn opt_in(&self) {
        self.core.opt_in();
    }

    /// Whether `optOut()` is in effect.
    #[napi(getter)]
    pub fn opted_out(&self) -> bool {
        self.core.is_opted_out()
    }

    /// Whether the client was created with `disabled: true`.
    #[napi(getter)]
    pub fn disabled(&self) -> bool {
        self.core.is_disabled()
    }

    /// Whether this client flushes when the process exits (the `flushOnExit` option).
    #[napi(getter)]
    pub fn flush_on_exit(&self) -> bool {
        self.flush_on_exit
    }

    /// The `shutdownTimeout` option, in milliseconds.
    #[napi(getter)]
    pub fn shutdown_timeout(&self) -> f64 {
        self.shutdown_timeout.as_secs_f64() * 1000.0
    }
}

impl Client {
    /// The client's one shutdown: started by the first call, shared by every later one, so
    /// concurrent calls all report what the shutdown did.
    fn shutdown_once(
        &self,
        timeout: Duration,
    ) -> Shared<BoxFuture<'static, pulseline::ShutdownOutcome>> {
        let mut slot = self.shutdown.lock().unwrap_or_else(PoisonError::into_inner);
        slot.get_or_insert_with(|| self.core.shutdown_async(timeout).boxed().shared())
            .clone()
    }

    fn timeout(&self, env: &Env, ms: Option<f64>, default: Duration) -> napi::Result<Duration> {
        match ms {
            None => Ok(default),
            Some(ms) => millis("timeoutMs", ms).map_err(|e| e.into_napi(env)),
        }
    }

    /// Reads the message object, runs the capture, and maps its result: the `messageId`, or
    /// `null` when the message was dropped (buffer full: counted and reported; shut down).
    fn capture(
        &self,
        env: &Env,
        args: &[napi::sys::napi_value],
        kind: Kind,
        send: impl FnOnce(
            &pulseline::Client,
            pulseline::User,
            Fields,
            &Converter,
        ) -> Result<pulseline::MessageId, pulseline::Error>,
    ) -> napi::Result<Option<String>> {
        let cx = Converter::new(env.raw());
        let mut fields = match Fields::from_args(&cx, kind, args) {
            Ok(f) => f,
            Err(Failed::Spec(spec)) => return Err(spec.into_napi(env)),
            Err(Failed::Kind(failure)) => return Err(pending_or_generic(env, kind, failure)),
        };
        let user = fields.user(kind).map_err(|e| e.into_napi(env))?;
        match send(&self.core, user, fields, &cx) {
            Ok(id) => Ok(Some(id.into())),
            Err(pulseline::Error::QueueFull { .. } | pulseline::Error::Closed) => Ok(None),
            Err(err @ pulseline::Error::Serialize { field, .. }) => match cx.take_failure() {
                Some(failure) => match conversion_error(field, &failure) {
                    Some(spec) => Err(spec.into_napi(env)),
                    None => Err(pending_exception()),
                },
                None => Err(ErrorSpec::from(&err).into_napi(env)),
            },
            Err(err) => Err(ErrorSpec::from(&err).into_napi(env)),
        }
    }
}

/// A failed Node-API call while reading the message: a JavaScript exception (a throwing
/// getter or Proxy trap) propagates unchanged.
fn pending_or_generic(env: &Env, kind: Kind, failure: FailureKind) -> napi::Error {
    match crate::error::exception_pending(env) {
        true => pending_exception(),
        _ => ErrorSpec::type_error(
            "PULSELINE_ERROR",
            format!(
                "client.{}(): the message object could not be read ({failure:?})",
                kind.method
            ),
        )
        .into_napi(env),
    }
}

impl Drop for Client {
    /// A client dropped without `shutdown()` (garbage-collected, or its worker thread
    /// terminated) shuts down on a background thread, never on the JavaScript thread.
    fn drop(&mut self) {
        let started = self
            .shutdown
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some();
        if !started {
            crate::background::shut_down(Arc::clone(&self.core), self.shutdown_timeout);
        }
    }
}

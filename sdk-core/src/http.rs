//! The native HTTP transport: reqwest with rustls, keep-alive and timeouts.

use base64::Engine;
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, RETRY_AFTER};

use crate::{
    BatchRequest, BoxFuture, ClientOptions, Error, Transport, TransportErrorKind, TransportResponse,
};

/// Sends batches to `{host}/v1/batch` with HTTP Basic auth (the write key as user, empty
/// password), the way Segment's SDKs do.
///
/// Connections are kept alive and reused across batches; connect and request timeouts come
/// from [`ClientOptions`]. Redirects are not followed (a batch body is not resent to another
/// host). Used by default; build one yourself only to wrap it.
///
/// ```
/// let options = pulseline::ClientOptions::default();
/// let transport = pulseline::HttpTransport::new("plw_YOUR_WRITE_KEY", &options)?;
/// # let _ = transport;
/// # Ok::<(), pulseline::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
    url: reqwest::Url,
    authorization: HeaderValue,
}

impl HttpTransport {
    /// A transport for `write_key` configured from `options` (host, timeouts, in-flight count).
    pub fn new(write_key: &str, options: &ClientOptions) -> Result<Self, Error> {
        let host = options.host.trim_end_matches('/');
        let url = reqwest::Url::parse(&format!("{host}/v1/batch")).map_err(|e| Error::Config {
            reason: format!("host {:?} is not a URL: {e}", options.host),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::Config {
                reason: format!("host {:?} must be http:// or https://", options.host),
            });
        }
        if write_key.is_empty() {
            return Err(Error::Config {
                reason: "write key must not be empty".into(),
            });
        }
        let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{write_key}:"));
        let mut authorization =
            HeaderValue::from_str(&format!("Basic {credentials}")).map_err(|e| Error::Config {
                reason: format!("write key is not a valid header value: {e}"),
            })?;
        authorization.set_sensitive(true);
        let client = reqwest::Client::builder()
            .user_agent(format!(
                "{}/{}",
                options.library_name, options.library_version
            ))
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .pool_max_idle_per_host(options.max_in_flight)
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Config {
                reason: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(HttpTransport {
            client,
            url,
            authorization,
        })
    }
}

impl Transport for HttpTransport {
    fn send(&self, request: BatchRequest) -> BoxFuture<Result<TransportResponse, Error>> {
        let mut builder = self
            .client
            .post(self.url.clone())
            .header(AUTHORIZATION, self.authorization.clone())
            .header(CONTENT_TYPE, "application/json");
        if request.gzip {
            builder = builder.header(CONTENT_ENCODING, "gzip");
        }
        let builder = builder.body(request.body);
        Box::pin(async move {
            let response = builder.send().await.map_err(transport_error)?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response.bytes().await.map_err(transport_error)?.to_vec();
            Ok(TransportResponse {
                status,
                retry_after,
                body,
            })
        })
    }
}

fn transport_error(error: reqwest::Error) -> Error {
    let kind = if error.is_timeout() {
        TransportErrorKind::Timeout
    } else if error.is_connect() {
        TransportErrorKind::Connect
    } else {
        TransportErrorKind::Other
    };
    // reqwest's Display omits the cause ("error sending request"); the chain says why.
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    Error::Transport { kind, message }
}

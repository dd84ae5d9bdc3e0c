//! The client's address behind reverse proxies.
//!
//! The TCP peer is the client unless it is one of `PULSELINE_TRUSTED_PROXIES`. Then the
//! forwarding header the operator named (`X-Forwarded-For` by default, or RFC 7239 `Forwarded`)
//! is read from the right: each proxy appends the address it saw, so the right-most address that
//! is not a trusted proxy is the client. Anything further left was written by the client and
//! proves nothing. Only one header is read, because a proxy that maintains one of them passes
//! the other through as the client sent it.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

pub use crate::config::{ForwardedHeader, ProxyConfig};
use crate::state::AppState;

impl ProxyConfig {
    /// Whether `ip` is one of PULSELINE_TRUSTED_PROXIES.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from `peer` carrying `headers`.
    pub fn client_addr(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = match self.forwarded_header {
            ForwardedHeader::XForwardedFor => header_items(headers, "x-forwarded-for").collect(),
            ForwardedHeader::Forwarded => header_items(headers, "forwarded")
                .filter_map(forwarded_for)
                .collect(),
        };
        let mut client = peer;
        for hop in hops.iter().rev() {
            // An unknown or obfuscated hop: the last address known is what a trusted proxy saw.
            let Some(ip) = parse_hop(hop) else {
                return client;
            };
            client = ip;
            if !self.trusts(ip) {
                return ip;
            }
        }
        client
    }
}

/// The comma-separated items of every instance of a header, in order.
fn header_items<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

/// The `for=` value of one `Forwarded` element (`for=1.2.3.4;proto=https`).
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("for")
            .then(|| v.trim().trim_matches('"'))
    })
}

/// `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]:80` or `[2001:db8::1]`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sock) = hop.parse::<SocketAddr>() {
        return Some(sock.ip().to_canonical());
    }
    hop.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .and_then(|h| h.parse::<IpAddr>().ok())
}

/// The rate-limit key of a client address: IPv4 as is, IPv6 by its /64, because one host
/// commonly holds a whole /64 and could otherwise take a fresh address for every attempt.
pub fn limit_key(ip: Option<&str>) -> String {
    match ip.and_then(|s| s.parse::<IpAddr>().ok()) {
        Some(IpAddr::V6(v6)) => match IpNet::new(IpAddr::V6(v6), 64) {
            Ok(net) => net.trunc().to_string(),
            Err(_) => v6.to_string(),
        },
        Some(v4) => v4.to_string(),
        None => ip.unwrap_or("?").to_owned(),
    }
}

/// The client's address, computed once per request by [`client_addr`].
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

/// Middleware: records the request's [`ClientAddr`] for rate limits and the audit log, and
/// drops `X-Forwarded-Proto` unless a trusted proxy sent it: it decides whether the session
/// cookie is `Secure`, so a client must not be able to claim TLS it does not have.
pub async fn client_addr(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
        let peer = peer.ip();
        let addr = state.proxies.client_addr(peer, req.headers());
        req.extensions_mut().insert(ClientAddr(addr));
        if !state.proxies.trusts(peer.to_canonical()) {
            req.headers_mut().remove("x-forwarded-proto");
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_proxy;
    use axum::http::HeaderValue;

    fn config(nets: &[&str], header: ForwardedHeader) -> ProxyConfig {
        ProxyConfig {
            trusted_proxies: nets.iter().map(|n| parse_proxy(n).unwrap()).collect(),
            forwarded_header: header,
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let c = config(&["10.0.0.0/8", "127.0.0.1"], ForwardedHeader::XForwardedFor);
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 203.0.113.9"),
            ("x-forwarded-for", "10.1.2.3"),
        ]);
        assert_eq!(
            c.client_addr(peer, &h),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // An untrusted peer's header is ignored.
        let direct: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(c.client_addr(direct, &h), direct);
        // Garbage stops the walk at the last address a trusted proxy vouched for.
        let h = headers(&[("x-forwarded-for", "unknown, 10.1.2.3")]);
        assert_eq!(
            c.client_addr(peer, &h),
            "10.1.2.3".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn forwarded_for_parameters_with_ports_and_ipv6() {
        let c = config(&["127.0.0.0/8"], ForwardedHeader::Forwarded);
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        let h = headers(&[(
            "forwarded",
            "for=6.6.6.6, for=\"[2001:db8:cafe::17]:4711\";proto=https, for=127.0.0.2",
        )]);
        assert_eq!(
            c.client_addr(peer, &h),
            "2001:db8:cafe::17".parse::<IpAddr>().unwrap()
        );
        // X-Forwarded-For is not read when Forwarded is the configured header.
        let h = headers(&[("x-forwarded-for", "6.6.6.6")]);
        assert_eq!(c.client_addr(peer, &h), peer);
        assert!(parse_proxy("10.0.0.0/33").is_err());
    }
}

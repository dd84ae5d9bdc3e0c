//! Which reverse proxies may say who the client is; the parsing of forwarding headers lives
//! in `crate::proxy`, so this module stays free of the code it configures.

use std::net::IpAddr;

use clap::{Args, ValueEnum};
use ipnet::IpNet;

/// Which reverse proxies may say who the client is (README, "Behind a reverse proxy").
#[derive(Debug, Clone, Default, Args)]
pub struct ProxyConfig {
    /// Addresses or CIDR ranges of reverse proxies whose forwarding header is believed,
    /// comma-separated (e.g. `10.0.0.0/8,127.0.0.1`). Default: none; every header is ignored
    /// and the TCP peer is the client.
    #[arg(
        long,
        env = "PULSELINE_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = parse_proxy
    )]
    pub trusted_proxies: Vec<IpNet>,
    /// The header the trusted proxies append the client's address to.
    #[arg(long, env = "PULSELINE_FORWARDED_HEADER", value_enum, default_value_t)]
    pub forwarded_header: ForwardedHeader,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, most load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1` (its `for=` parameters).
    Forwarded,
}

/// An address (`10.0.0.5`, a /32 or /128) or a network (`10.0.0.0/8`, `fd00::/8`).
pub(crate) fn parse_proxy(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!(
                "'{s}' is not an address or CIDR range: PULSELINE_TRUSTED_PROXIES takes a \
                 comma-separated list like 10.0.0.0/8,192.0.2.7"
            )
        })
}

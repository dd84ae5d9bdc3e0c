//! Client address → `context.location` with a MaxMind-format City or Country database
//! (`PULSELINE_GEOIP_DB`, e.g. GeoLite2-City.mmdb), read once at startup and kept in memory.

use std::net::IpAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// `context.location`: what the database knows of an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// ISO 3166-1 alpha-2, e.g. "DE".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// The first subdivision's English name (a state or region), else its ISO code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The city's English name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
}

/// The parts of a GeoIP2/GeoLite2 City (or Country) record read here.
#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow)]
    country: Option<Country<'a>>,
    #[serde(borrow)]
    subdivisions: Option<Vec<Named<'a>>>,
    #[serde(borrow)]
    city: Option<Named<'a>>,
}

#[derive(Deserialize)]
struct Country<'a> {
    iso_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Named<'a> {
    iso_code: Option<&'a str>,
    #[serde(borrow)]
    names: Option<Names<'a>>,
}

#[derive(Deserialize)]
struct Names<'a> {
    en: Option<&'a str>,
}

/// An opened database.
pub struct GeoDb {
    reader: maxminddb::Reader<Vec<u8>>,
    kind: String,
}

impl std::fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoDb").field("kind", &self.kind).finish()
    }
}

impl GeoDb {
    /// Reads the whole file; an unreadable or malformed one stops startup with the reason.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let reader = maxminddb::Reader::open_readfile(path).map_err(|e| {
            anyhow::anyhow!(
                "PULSELINE_GEOIP_DB={}: not a readable MaxMind database ({e}); use a \
                 GeoLite2-City.mmdb or GeoLite2-Country.mmdb, or unset it to run without geo",
                path.display()
            )
        })?;
        let kind = reader.metadata().database_type.clone();
        Ok(Self { reader, kind })
    }

    /// The database's type as it names itself, e.g. "GeoLite2-City".
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// `None` for addresses the database does not hold (private ranges, unknown networks).
    pub fn locate(&self, ip: IpAddr) -> Option<Location> {
        let found = self.reader.lookup(ip).ok()?;
        let record: Record<'_> = found.decode().ok()??;
        let region = record
            .subdivisions
            .as_ref()
            .and_then(|s| s.first())
            .and_then(|s| {
                s.names
                    .as_ref()
                    .and_then(|n| n.en)
                    .or(s.iso_code)
                    .map(str::to_owned)
            });
        let location = Location {
            country: record.country.and_then(|c| c.iso_code).map(str::to_owned),
            region,
            city: record
                .city
                .and_then(|c| c.names)
                .and_then(|n| n.en)
                .map(str::to_owned),
        };
        (location.country.is_some() || location.city.is_some()).then_some(location)
    }
}

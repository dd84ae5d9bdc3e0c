//! User-Agent → browser, OS, device type and bot flag, with uap-core's maintained patterns
//! (the ua-parser project's regexes, `collector/data/uap-core/`) and a cache of recent parses.

use std::num::NonZeroUsize;
use std::sync::{Arc, LazyLock, Mutex};

use lru::LruCache;
use serde::Serialize;

/// Longest User-Agent read, in bytes: longer ones are parsed by their first this many bytes
/// (cut at a character boundary). Real browsers' are a few hundred; the cut bounds the cost of
/// one parse and of one cache entry.
pub const MAX_USER_AGENT_BYTES: usize = 512;

/// uap-core's patterns, compiled on the first parse (not at startup: a collector that only
/// receives server-side events never pays for it).
static EXTRACTOR: LazyLock<ua_parser::Extractor<'static>> = LazyLock::new(|| {
    let regexes: ua_parser::Regexes<'static> =
        serde_json::from_str(include_str!("../../data/uap-core/regexes.json"))
            .expect("collector/data/uap-core/regexes.json is uap-core's regexes as JSON");
    ua_parser::Extractor::try_from(regexes).expect("uap-core's patterns compile")
});

/// A name and version, as stored in `context.browser` and `context.os`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NameVersion {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// The kind of device, as stored in `context.device.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceType {
    Desktop,
    Mobile,
    Tablet,
    Bot,
    Other,
}

impl DeviceType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Desktop => "desktop",
            Self::Mobile => "mobile",
            Self::Tablet => "tablet",
            Self::Bot => "bot",
            Self::Other => "other",
        }
    }
}

/// What one User-Agent says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// `None` when uap-core does not know the client.
    pub browser: Option<NameVersion>,
    pub os: Option<NameVersion>,
    pub device: DeviceType,
    /// A crawler, monitor or headless/automated browser.
    pub bot: bool,
}

/// The parser and its cache of recent parses: the same few hundred User-Agents make most of a
/// site's traffic, and a parse runs hundreds of patterns while a cache hit is one hash.
#[derive(Debug)]
pub struct AgentParser {
    cache: Mutex<LruCache<Box<str>, Arc<Agent>>>,
}

impl AgentParser {
    pub fn new(cache_entries: usize) -> Self {
        let size = NonZeroUsize::new(cache_entries).unwrap_or(NonZeroUsize::MIN);
        Self {
            cache: Mutex::new(LruCache::new(size)),
        }
    }

    /// The parse of `ua` (its first [`MAX_USER_AGENT_BYTES`]), from the cache when seen lately.
    pub fn parse(&self, ua: &str) -> Arc<Agent> {
        let ua = truncate(ua.trim(), MAX_USER_AGENT_BYTES);
        if let Some(hit) = self.lock().get(ua) {
            return Arc::clone(hit);
        }
        // Parsed outside the lock: other requests keep hitting the cache meanwhile.
        let agent = Arc::new(parse_uncached(ua));
        self.lock().put(Box::from(ua), Arc::clone(&agent));
        agent
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<Box<str>, Arc<Agent>>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// uap-core user-agent families that its device list does not call "Spider" but that are no
/// person: automated browsers (they run a page's analytics like a visitor's browser would) and
/// HTTP libraries and command-line clients (uap-core's own list of them). okhttp is not here:
/// Android apps send their real users' requests with it.
const AUTOMATED_FAMILIES: &[&str] = &[
    "HeadlessChrome",
    "PhantomJS",
    "Electron Headless",
    "curl",
    "libcurl-agent",
    "PycURL",
    "Wget",
    "wget2",
    "aria2",
    "HTTPie",
    "libwww-perl",
    "Python Requests",
    "Python aiohttp",
    "Python-urllib",
    "Go-http-client",
    "go-resty",
    "Apache-HttpClient",
    "Google-HTTP-Java-Client",
    "PostmanRuntime",
    "insomnia",
    "axios",
    "got",
    "reqwest",
];

fn parse_uncached(ua: &str) -> Agent {
    let (client, os, device) = EXTRACTOR.extract(ua);
    let family = client
        .as_ref()
        .map(|c| c.family.as_ref())
        .unwrap_or("Other");
    let device_family = device
        .as_ref()
        .map(|d| d.device.as_ref())
        .unwrap_or("Other");
    let bot = device_family == "Spider"
        || AUTOMATED_FAMILIES.contains(&family)
        || ua.contains("Lighthouse")
        || ua.is_empty();
    let browser = client.filter(|c| c.family != "Other").map(|c| NameVersion {
        name: c.family.into_owned(),
        version: version([c.major, c.minor, c.patch]),
    });
    let os = os.filter(|o| o.os != "Other").map(|o| NameVersion {
        version: version([o.major.as_deref(), o.minor.as_deref(), o.patch.as_deref()]),
        name: o.os.into_owned(),
    });
    let device = if bot {
        DeviceType::Bot
    } else {
        device_type(ua, os.as_ref().map(|o| o.name.as_str()), device_family)
    };
    Agent {
        browser,
        os,
        device,
        bot,
    }
}

/// "120.0.6099", without the empty parts.
fn version(parts: [Option<&str>; 3]) -> Option<String> {
    let parts: Vec<&str> = parts
        .into_iter()
        .map_while(|p| p.filter(|p| !p.is_empty()))
        .collect();
    (!parts.is_empty()).then(|| parts.join("."))
}

/// uap-core names the OS and the device model, not the kind of device; the kind follows from
/// them: iPads and Android without "Mobile" are tablets (Google's own rule for Android UAs).
fn device_type(ua: &str, os: Option<&str>, device_family: &str) -> DeviceType {
    let lower_family = device_family.to_ascii_lowercase();
    if device_family == "iPad" || lower_family.contains("tablet") || lower_family.contains("kindle")
    {
        return DeviceType::Tablet;
    }
    match os.unwrap_or("") {
        "iOS" => DeviceType::Mobile,
        "Android" if ua.contains("Mobile") => DeviceType::Mobile,
        "Android" => DeviceType::Tablet,
        "Windows Phone" | "BlackBerry OS" | "KaiOS" | "Firefox OS" | "Symbian OS" => {
            DeviceType::Mobile
        }
        "Windows" | "Mac OS X" | "macOS" | "Linux" | "Ubuntu" | "Fedora" | "Debian"
        | "Chrome OS" | "ChromeOS" | "FreeBSD" | "OpenBSD" | "NetBSD" | "Solaris" => {
            DeviceType::Desktop
        }
        _ if ua.contains("Mobi") => DeviceType::Mobile,
        _ => DeviceType::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(ua: &str) -> Agent {
        AgentParser::new(16).parse(ua).as_ref().clone()
    }

    fn names(a: &Agent) -> (String, String, DeviceType, bool) {
        (
            a.browser
                .as_ref()
                .map(|b| b.name.clone())
                .unwrap_or_default(),
            a.os.as_ref().map(|o| o.name.clone()).unwrap_or_default(),
            a.device,
            a.bot,
        )
    }

    #[test]
    fn current_browsers_on_desktop_and_mobile() {
        use DeviceType::*;
        let cases = [
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                ("Chrome", "Windows", Desktop),
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0",
                ("Firefox", "Mac OS X", Desktop),
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
                ("Safari", "Mac OS X", Desktop),
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
                ("Edge", "Windows", Desktop),
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
                ("Firefox", "Linux", Desktop),
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
                ("Mobile Safari", "iOS", Mobile),
            ),
            (
                "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
                ("Chrome Mobile", "Android", Mobile),
            ),
            (
                "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
                ("Firefox Mobile", "Android", Mobile),
            ),
            (
                "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
                ("Mobile Safari", "iOS", Tablet),
            ),
            (
                "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
                ("Chrome", "Android", Tablet),
            ),
        ];
        for (ua, (browser, os, device)) in cases {
            let a = parse(ua);
            assert_eq!(
                names(&a),
                (browser.to_owned(), os.to_owned(), device, false),
                "{ua}"
            );
        }
        let chrome = parse(cases[0].0);
        assert_eq!(chrome.browser.unwrap().version.as_deref(), Some("131.0.0"));
        assert_eq!(chrome.os.unwrap().version.as_deref(), Some("10"));
    }

    #[test]
    fn crawlers_and_headless_browsers_are_bots() {
        for ua in [
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
            "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
            "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36",
            "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse",
            "curl/8.5.0",
            "python-requests/2.32.3",
        ] {
            let a = parse(ua);
            assert!(a.bot, "{ua}: {a:?}");
            assert_eq!(a.device, DeviceType::Bot, "{ua}");
        }
    }

    #[test]
    fn long_agents_are_cut_and_cached() {
        let parser = AgentParser::new(2);
        let long = format!(
            "Mozilla/5.0 (Windows NT 10.0) Firefox/133.0 {}",
            "é".repeat(2000)
        );
        let a = parser.parse(&long);
        assert_eq!(a.browser.as_ref().unwrap().name, "Firefox");
        assert!(Arc::ptr_eq(&a, &parser.parse(&long)));
        assert!(
            parser
                .lock()
                .iter()
                .all(|(k, _)| k.len() <= MAX_USER_AGENT_BYTES)
        );
    }
}

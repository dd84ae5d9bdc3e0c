//! Where a visit came from: `context.source = {name, medium}` from the campaign (utm_source,
//! utm_medium) and the page's referrer, by the table in docs/web-analytics.md.

use serde::Serialize;

/// `context.source`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Source {
    pub name: String,
    /// search, social, email, referral, paid or none.
    pub medium: &'static str,
}

/// Longest source name stored, in characters (a `utm_source` or a referrer's host).
pub const MAX_SOURCE_NAME_CHARS: usize = 100;

pub const DIRECT: &str = "Direct / None";

/// Known referrers: (domain, name, medium). A domain matches itself and its subdomains; a
/// domain ending in `.*` matches any country or generic top-level domain (`google.de`,
/// `google.co.uk`). Names are also what `utm_source` values map to (case-insensitively).
const KNOWN: &[(&str, &str, &str)] = &[
    ("google.*", "Google", "search"),
    ("bing.com", "Bing", "search"),
    ("duckduckgo.com", "DuckDuckGo", "search"),
    ("search.yahoo.com", "Yahoo", "search"),
    ("yahoo.*", "Yahoo", "search"),
    ("baidu.com", "Baidu", "search"),
    ("yandex.*", "Yandex", "search"),
    ("ya.ru", "Yandex", "search"),
    ("ecosia.org", "Ecosia", "search"),
    ("search.brave.com", "Brave Search", "search"),
    ("startpage.com", "Startpage", "search"),
    ("qwant.com", "Qwant", "search"),
    ("news.ycombinator.com", "Hacker News", "social"),
    ("reddit.com", "Reddit", "social"),
    ("t.co", "X (Twitter)", "social"),
    ("twitter.com", "X (Twitter)", "social"),
    ("x.com", "X (Twitter)", "social"),
    ("facebook.com", "Facebook", "social"),
    ("fb.me", "Facebook", "social"),
    ("instagram.com", "Instagram", "social"),
    ("linkedin.com", "LinkedIn", "social"),
    ("lnkd.in", "LinkedIn", "social"),
    ("github.com", "GitHub", "referral"),
    ("youtube.com", "YouTube", "social"),
    ("youtu.be", "YouTube", "social"),
    ("pinterest.*", "Pinterest", "social"),
    ("bsky.app", "Bluesky", "social"),
    ("mastodon.social", "Mastodon", "social"),
    ("news.google.com", "Google News", "referral"),
    ("mail.google.com", "Gmail", "email"),
    ("outlook.live.com", "Outlook", "email"),
    ("chatgpt.com", "ChatGPT", "referral"),
    ("perplexity.ai", "Perplexity", "referral"),
];

/// `utm_source` spellings of the known sources beyond their names (`google` is `Google` already).
const SOURCE_ALIASES: &[(&str, &str)] = &[
    ("twitter", "X (Twitter)"),
    ("x", "X (Twitter)"),
    ("fb", "Facebook"),
    ("ig", "Instagram"),
    ("hn", "Hacker News"),
    ("hackernews", "Hacker News"),
    ("ddg", "DuckDuckGo"),
    ("yt", "YouTube"),
];

/// `utm_medium` values and the medium they are.
fn medium_of_utm(medium: &str) -> Option<&'static str> {
    let m = medium.trim().to_ascii_lowercase();
    Some(match m.as_str() {
        "email" | "e-mail" | "e_mail" | "newsletter" | "mail" => "email",
        "cpc" | "ppc" | "paid" | "paidsearch" | "paid-search" | "paid_search" | "cpm"
        | "display" | "paid-social" | "paid_social" | "paidsocial" | "retargeting" => "paid",
        "social" | "social-media" | "social_media" | "sm" | "social-network" => "social",
        "organic" | "search" => "search",
        "referral" | "referrer" | "link" => "referral",
        _ => return None,
    })
}

/// The source of a message with `utm_source`/`utm_medium` (from `context.campaign`), the page's
/// `referrer` and the page's own `url` (a referrer from the page's own host is not a source).
pub fn classify(
    utm_source: Option<&str>,
    utm_medium: Option<&str>,
    referrer: Option<&str>,
    page_url: Option<&str>,
) -> Source {
    let utm_medium = utm_medium.and_then(medium_of_utm);
    if let Some(utm) = utm_source.map(str::trim).filter(|s| !s.is_empty()) {
        let known = known_by_name(utm);
        return Source {
            name: known.map_or_else(|| cap(utm), |(name, _)| name.to_owned()),
            medium: utm_medium
                .or(known.map(|(_, medium)| medium))
                .unwrap_or("referral"),
        };
    }
    let referrer_host = referrer.and_then(host_of);
    let page_host = page_url.and_then(host_of);
    match referrer_host {
        Some(host) if Some(&host) != page_host.as_ref() => {
            let bare = host.strip_prefix("www.").unwrap_or(&host);
            match known_by_host(bare) {
                Some((name, medium)) => Source {
                    name: name.to_owned(),
                    medium: utm_medium.unwrap_or(medium),
                },
                None => Source {
                    name: cap(bare),
                    medium: utm_medium.unwrap_or("referral"),
                },
            }
        }
        _ => match utm_medium {
            // A campaign link without utm_source still says how it was sent.
            Some(medium) => Source {
                name: DIRECT.to_owned(),
                medium,
            },
            None => Source {
                name: DIRECT.to_owned(),
                medium: "none",
            },
        },
    }
}

fn cap(s: &str) -> String {
    s.chars().take(MAX_SOURCE_NAME_CHARS).collect()
}

/// The lower-case host of an absolute http(s) URL.
fn host_of(url: &str) -> Option<String> {
    let url = url::Url::parse(url.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let host = url.host_str()?.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

fn known_by_name(utm: &str) -> Option<(&'static str, &'static str)> {
    let alias = SOURCE_ALIASES
        .iter()
        .find(|(a, _)| a.eq_ignore_ascii_case(utm))
        .map(|(_, name)| *name);
    let name = alias.unwrap_or(utm);
    KNOWN
        .iter()
        .find(|(_, n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, n, m)| (*n, *m))
}

/// The most specific table entry for `host` (`news.google.com` before `google.*`).
fn known_by_host(host: &str) -> Option<(&'static str, &'static str)> {
    KNOWN
        .iter()
        .filter(|(domain, _, _)| domain_matches(host, domain))
        .max_by_key(|(domain, _, _)| domain.len())
        .map(|(_, n, m)| (*n, *m))
}

fn domain_matches(host: &str, domain: &str) -> bool {
    if let Some(base) = domain.strip_suffix(".*") {
        // `google.*`: the label `google` followed by one or two short labels (com, de, co.uk).
        let labels: Vec<&str> = host.split('.').collect();
        return labels.iter().enumerate().any(|(i, label)| {
            let tail = &labels[i + 1..];
            *label == base
                && (1..=2).contains(&tail.len())
                && tail.iter().all(|t| (2..=3).contains(&t.len()))
        });
    }
    host == domain
        || host
            .strip_suffix(domain)
            .is_some_and(|rest| rest.ends_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(
        utm: Option<&str>,
        medium: Option<&str>,
        referrer: Option<&str>,
    ) -> (String, &'static str) {
        let s = classify(utm, medium, referrer, Some("https://shop.example/landing"));
        (s.name, s.medium)
    }

    #[test]
    fn referrers_map_to_known_sources() {
        let cases = [
            ("https://www.google.com/", "Google", "search"),
            ("https://www.google.co.uk/search?q=x", "Google", "search"),
            (
                "https://news.google.com/articles/x",
                "Google News",
                "referral",
            ),
            ("https://www.bing.com/search?q=x", "Bing", "search"),
            ("https://duckduckgo.com/", "DuckDuckGo", "search"),
            ("https://search.yahoo.co.jp/", "Yahoo", "search"),
            ("https://www.baidu.com/link?url=x", "Baidu", "search"),
            ("https://yandex.ru/", "Yandex", "search"),
            (
                "https://news.ycombinator.com/item?id=1",
                "Hacker News",
                "social",
            ),
            ("https://old.reddit.com/r/rust/", "Reddit", "social"),
            ("https://t.co/abc", "X (Twitter)", "social"),
            ("https://l.facebook.com/l.php?u=x", "Facebook", "social"),
            ("https://www.linkedin.com/feed/", "LinkedIn", "social"),
            ("https://github.com/org/repo", "GitHub", "referral"),
            ("https://m.youtube.com/watch?v=x", "YouTube", "social"),
            (
                "https://blog.rust-lang.org/post",
                "blog.rust-lang.org",
                "referral",
            ),
        ];
        for (referrer, name, medium) in cases {
            assert_eq!(
                src(None, None, Some(referrer)),
                (name.to_owned(), medium),
                "{referrer}"
            );
        }
        // Not a Google domain, though it contains the word.
        assert_eq!(
            src(None, None, Some("https://google.example.org/")).0,
            "google.example.org"
        );
    }

    #[test]
    fn utm_source_overrides_and_utm_medium_classifies() {
        assert_eq!(
            src(
                Some("newsletter-42"),
                Some("email"),
                Some("https://www.google.com/")
            ),
            ("newsletter-42".to_owned(), "email")
        );
        assert_eq!(
            src(Some("google"), Some("cpc"), None),
            ("Google".to_owned(), "paid")
        );
        assert_eq!(
            src(Some("twitter"), None, None),
            ("X (Twitter)".to_owned(), "social")
        );
        assert_eq!(
            src(Some("partner"), Some("banner"), None),
            ("partner".to_owned(), "referral")
        );
        assert_eq!(
            src(Some(&"x".repeat(500)), None, None).0.len(),
            MAX_SOURCE_NAME_CHARS
        );
    }

    #[test]
    fn direct_self_referrals_and_odd_referrers() {
        assert_eq!(src(None, None, None), (DIRECT.to_owned(), "none"));
        assert_eq!(src(None, None, Some("")), (DIRECT.to_owned(), "none"));
        assert_eq!(
            src(None, None, Some("https://shop.example/cart")),
            (DIRECT.to_owned(), "none")
        );
        assert_eq!(
            src(None, None, Some("android-app://com.google.android.gm/")),
            (DIRECT.to_owned(), "none")
        );
        assert_eq!(
            src(None, None, Some("not a url")),
            (DIRECT.to_owned(), "none")
        );
    }
}

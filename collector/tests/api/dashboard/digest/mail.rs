//! The digest e-mails as the SMTP sink received them, decoded as a mail reader would: headers
//! (RFC 2047 words) and the quoted-printable or base64 parts of multipart/alternative.

/// An e-mail as its reader sees it: headers decoded, both parts decoded.
#[derive(Debug)]
pub(super) struct Mail {
    pub(super) to: String,
    pub(super) subject: String,
    pub(super) text: String,
    pub(super) html: String,
}

/// RFC 2047 encoded words (`=?utf-8?b?…?=`, as lettre writes non-ASCII subjects) decoded.
fn decode_header(value: &str) -> String {
    use base64::Engine;
    let mut out = String::new();
    let mut after_encoded = false;
    for word in value.split_whitespace() {
        let decoded = word
            .strip_prefix("=?utf-8?b?")
            .and_then(|w| w.strip_suffix("?="))
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .map(|b| String::from_utf8(b).unwrap());
        // Whitespace between two encoded words is not part of the text (RFC 2047).
        if !(out.is_empty() || after_encoded && decoded.is_some()) {
            out.push(' ');
        }
        after_encoded = decoded.is_some();
        out.push_str(&decoded.unwrap_or_else(|| word.to_owned()));
    }
    out
}

/// Headers (unfolded, lower-case names) and the body of a message or a MIME part.
fn split(raw: &str) -> (Vec<(String, String)>, String) {
    let (head, body) = raw.split_once("\n\n").unwrap_or((raw, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    (headers, body.to_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

pub(super) fn parse_mail(raw: &str) -> Mail {
    use base64::Engine;
    // The sink keeps SMTP's dot-stuffing.
    let raw: String = raw
        .lines()
        .map(|l| {
            l.strip_prefix('.')
                .filter(|r| r.starts_with('.'))
                .unwrap_or(l)
        })
        .collect::<Vec<_>>()
        .join("\n");
    let (headers, body) = split(&raw);
    let content_type = header(&headers, "content-type");
    assert!(content_type.starts_with("multipart/alternative"), "{raw}");
    let boundary = content_type
        .split("boundary=")
        .nth(1)
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let (mut text, mut html) = (String::new(), String::new());
    for part in body.split(&format!("--{boundary}")).skip(1) {
        let part = part.trim_start_matches('\n');
        if part.starts_with("--") {
            break;
        }
        let (h, b) = split(part);
        let decoded = match header(&h, "content-transfer-encoding") {
            "quoted-printable" => String::from_utf8(
                quoted_printable::decode(b.trim_end(), quoted_printable::ParseMode::Robust)
                    .unwrap(),
            )
            .unwrap(),
            "base64" => String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(b.replace(['\n', '\r'], ""))
                    .unwrap(),
            )
            .unwrap(),
            _ => b.clone(),
        };
        let decoded = decoded.replace("\r\n", "\n");
        if header(&h, "content-type").starts_with("text/plain") {
            text = decoded;
        } else if header(&h, "content-type").starts_with("text/html") {
            html = decoded;
        }
    }
    Mail {
        to: header(&headers, "to").to_owned(),
        subject: decode_header(header(&headers, "subject")),
        text,
        html,
    }
}

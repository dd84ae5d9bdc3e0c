//! What the real services enforce: Discord's and Slack's payload limits, and the Standard
//! Webhooks signature.

use super::*;

/// Discord's documented limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits).
pub fn discord_limits(p: &Value) -> Result<(), Vec<String>> {
    let errors = std::cell::RefCell::new(Vec::new());
    let check = |what: String, n: usize, max: usize| {
        if n > max {
            errors.borrow_mut().push(format!(
                "{what}: Must be {max} or fewer in length (got {n})"
            ));
        }
    };
    check("content".into(), len(&p["content"]), 2_000);
    let embeds = p["embeds"].as_array().cloned().unwrap_or_default();
    check("embeds".into(), embeds.len(), 10);
    let mut total = 0;
    for (i, e) in embeds.iter().enumerate() {
        check(format!("embeds.{i}.title"), len(&e["title"]), 256);
        check(
            format!("embeds.{i}.description"),
            len(&e["description"]),
            4_096,
        );
        check(
            format!("embeds.{i}.footer.text"),
            len(&e["footer"]["text"]),
            2_048,
        );
        check(
            format!("embeds.{i}.author.name"),
            len(&e["author"]["name"]),
            256,
        );
        let fields = e["fields"].as_array().cloned().unwrap_or_default();
        check(format!("embeds.{i}.fields"), fields.len(), 25);
        total += len(&e["title"])
            + len(&e["description"])
            + len(&e["footer"]["text"])
            + len(&e["author"]["name"]);
        for (j, f) in fields.iter().enumerate() {
            check(format!("embeds.{i}.fields.{j}.name"), len(&f["name"]), 256);
            check(
                format!("embeds.{i}.fields.{j}.value"),
                len(&f["value"]),
                1_024,
            );
            if len(&f["name"]) == 0 || len(&f["value"]) == 0 {
                errors.borrow_mut().push(format!(
                    "embeds.{i}.fields.{j}: name and value are required"
                ));
            }
            total += len(&f["name"]) + len(&f["value"]);
        }
    }
    check("embeds (total characters)".into(), total, 6_000);
    for (i, e) in embeds.iter().enumerate() {
        let mut texts = vec![(format!("embeds.{i}.description"), &e["description"])];
        for (j, f) in e["fields"].as_array().into_iter().flatten().enumerate() {
            texts.push((format!("embeds.{i}.fields.{j}.name"), &f["name"]));
            texts.push((format!("embeds.{i}.fields.{j}.value"), &f["value"]));
        }
        for (what, text) in texts {
            if let Some(link) = text.as_str().and_then(masked_link) {
                errors.borrow_mut().push(format!(
                    "{what}: renders the masked link {link} (its text disguises the URL)"
                ));
            }
        }
    }
    if p["allowed_mentions"] != json!({"parse": []}) {
        let text = p.to_string();
        if ["@everyone", "@here", "<@"]
            .iter()
            .any(|m| text.contains(m))
        {
            errors
                .borrow_mut()
                .push("would ping: a mention without allowed_mentions {\"parse\": []}".into());
        }
    }
    if embeds.is_empty() && len(&p["content"]) == 0 {
        errors
            .borrow_mut()
            .push("Cannot send an empty message".into());
    }
    let errors = errors.into_inner();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// A masked link `[text](url)` as Discord's markdown renders it (backslash escapes honoured).
fn masked_link(s: &str) -> Option<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '[' => {
                let rest: String = chars[i..].iter().collect();
                if let Some(close) = rest.find("](")
                    && let Some(end) = rest[close..].find(')')
                {
                    return Some(rest[..close + end + 1].to_owned());
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

/// A Slack control sequence (`<!channel>`, `<@U123>`, `<https://evil|text>`) in mrkdwn text:
/// Slack renders it as a ping or a link instead of the characters.
fn slack_control(s: &str) -> Option<&str> {
    let open = s.find('<')?;
    let close = s[open..].find('>')?;
    Some(&s[open..open + close + 1])
}

/// Slack's Block Kit limits for what the collector sends.
pub fn slack_limits(p: &Value) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    if len(&p["text"]) == 0 {
        errors.push("text is required (the notification fallback)".into());
    }
    let blocks = p["blocks"].as_array().cloned().unwrap_or_default();
    if blocks.len() > 50 {
        errors.push("more than 50 blocks".into());
    }
    for b in &blocks {
        match b["type"].as_str() {
            Some("header") if len(&b["text"]["text"]) > 150 => {
                errors.push("header text over 150".into())
            }
            Some("section") => {
                if len(&b["text"]["text"]) > 3_000 {
                    errors.push("section text over 3000".into());
                }
                let fields = b["fields"].as_array().cloned().unwrap_or_default();
                if fields.len() > 10 || fields.iter().any(|f| len(&f["text"]) > 2_000) {
                    errors.push("section fields over limits".into());
                }
            }
            _ => {}
        }
    }
    let mut mrkdwn = vec![&p["text"]];
    for b in &blocks {
        if b["text"]["type"] == "mrkdwn" {
            mrkdwn.push(&b["text"]["text"]);
        }
        for f in b["fields"]
            .as_array()
            .into_iter()
            .chain(b["elements"].as_array())
            .flatten()
        {
            if f["type"] == "mrkdwn" {
                mrkdwn.push(&f["text"]);
            }
        }
    }
    for text in mrkdwn.iter().filter_map(|t| t.as_str()) {
        if let Some(seq) = slack_control(text) {
            errors.push(format!(
                "unescaped {seq}: Slack renders it as a ping or a disguised link"
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Standard Webhooks verification, as a receiver implements it from the specification.
pub fn verify_signature(r: &Receiver, headers: &HeaderMap, body: &[u8]) -> Result<(), Vec<String>> {
    let secret =
        r.0.secret
            .lock()
            .unwrap()
            .clone()
            .ok_or_else(|| vec!["no secret configured".to_owned()])?;
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (Some(id), Some(ts), Some(sigs)) = (
        get("webhook-id"),
        get("webhook-timestamp"),
        get("webhook-signature"),
    ) else {
        return Err(vec![
            "missing webhook-id, webhook-timestamp or webhook-signature".into(),
        ]);
    };
    let ts_num: i64 = ts.parse().map_err(|_| vec!["bad timestamp".to_owned()])?;
    if (chrono::Utc::now().timestamp() - ts_num).abs() > 300 {
        return Err(vec!["timestamp outside the 5-minute tolerance".into()]);
    }
    let key = STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .map_err(|_| vec!["bad secret".to_owned()])?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    if sigs.split(' ').any(|s| s == expected) {
        Ok(())
    } else {
        Err(vec![format!("signature mismatch: got {sigs}")])
    }
}

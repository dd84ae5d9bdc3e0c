//! Sending one digest e-mail over SMTP (lettre): an HTML part and a plain-text part as
//! multipart/alternative, to one member.

use std::time::Duration;

use crate::config::DeliveryConfig;

/// Why an e-mail was not sent, and whether trying again can help.
#[derive(Debug, Clone)]
pub struct EmailError {
    pub message: String,
    pub retryable: bool,
}

impl EmailError {
    fn permanent(message: String) -> Self {
        Self {
            message,
            retryable: false,
        }
    }
}

/// Whether this collector can send e-mail at all.
pub fn configured(config: &DeliveryConfig) -> bool {
    config.smtp_url.is_some() && config.smtp_from.is_some()
}

pub(super) async fn send(
    config: &DeliveryConfig,
    to: &str,
    subject: &str,
    text: String,
    html: String,
) -> Result<(), EmailError> {
    use lettre::message::MultiPart;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    let (Some(url), Some(from)) = (&config.smtp_url, &config.smtp_from) else {
        return Err(EmailError::permanent(
            "the digest needs an SMTP server: set PULSELINE_SMTP_URL and PULSELINE_SMTP_FROM"
                .into(),
        ));
    };
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|e| EmailError::permanent(format!("PULSELINE_SMTP_URL is not usable: {e}")))?
        .timeout(Some(Duration::from_millis(config.timeout_ms)))
        .build();
    let message = Message::builder()
        .from(from.parse().map_err(|e| {
            EmailError::permanent(format!(
                "PULSELINE_SMTP_FROM '{from}' is not an address: {e}"
            ))
        })?)
        .to(to
            .parse()
            .map_err(|e| EmailError::permanent(format!("'{to}' is not an email address: {e}")))?)
        .subject(crate::alerting::delivery::sender::one_line(subject))
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| EmailError::permanent(format!("could not build the email: {e}")))?;
    transport
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| EmailError {
            retryable: !e.is_permanent(),
            message: format!("SMTP: {e}"),
        })
}

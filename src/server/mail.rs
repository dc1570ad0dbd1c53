//! Email, when `MINO_SMTP_URL` is set: invitations are sent to the invited
//! address as well as shown to the inviter. Without SMTP nothing is sent
//! and nothing else changes.
//!
//! `MINO_SMTP_URL` is lettre's URL form: `smtp://user:pass@host:587?tls=required`
//! (STARTTLS), `smtps://user:pass@host:465` (TLS from the start), or
//! `smtp://host:25` (plain, for a relay on the same network).

use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// How long sending one message may take before the inviter is told it
/// failed (the invitation itself is made either way).
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// A mailer for `url`, sending as `from` ("Mino <mino@example.com>").
    pub fn new(url: &str, from: &str) -> Result<Mailer, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| format!("MINO_SMTP_URL is not an SMTP URL lettre can use: {e}"))?
            .timeout(Some(SEND_TIMEOUT))
            .build();
        let from = from
            .parse::<Mailbox>()
            .map_err(|e| format!("MINO_SMTP_FROM is not an address ({e}): {from:?}"))?;
        Ok(Mailer { transport, from })
    }

    /// Sends a plain-text message; the error says why it was not sent.
    pub async fn send(&self, to: &str, subject: &str, body: String) -> Result<(), String> {
        let to = to
            .parse::<Mailbox>()
            .map_err(|e| format!("{to} is not an address: {e}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| e.to_string())?;
        match tokio::time::timeout(SEND_TIMEOUT, self.transport.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("the mail server refused it: {e}")),
            Err(_) => Err("the mail server did not answer in time".into()),
        }
    }
}

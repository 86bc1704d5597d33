//! Outgoing mail. Mails are queued as `email.send` jobs (in the same transaction as the change
//! that causes them, where there is one) and sent by the job worker over SMTP with lettre, so a
//! slow or failing mail server never blocks a request and a failed send is retried.

use std::sync::Arc;

use async_trait::async_trait;
use guanxi_store::jobs::{JobContext, JobHandler};
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::config::MailConfig;

/// The job kind that sends one mail.
pub const SEND_EMAIL: &str = "email.send";

/// One plain-text mail.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

impl Mail {
    pub fn payload(&self) -> Json {
        serde_json::to_value(self).unwrap_or(Json::Null)
    }
}

/// Sends `email.send` jobs.
pub struct MailSender {
    config: MailConfig,
}

impl MailSender {
    pub fn new(config: MailConfig) -> Arc<Self> {
        Arc::new(MailSender { config })
    }

    fn transport(&self) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
        let c = &self.config;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&c.smtp_host).port(c.smtp_port);
        builder = match c.smtp_tls.as_str() {
            "starttls" => builder.tls(Tls::Required(TlsParameters::new(c.smtp_host.clone())?)),
            "tls" => builder.tls(Tls::Wrapper(TlsParameters::new(c.smtp_host.clone())?)),
            _ => builder.tls(Tls::None),
        };
        if !c.smtp_username.is_empty() {
            builder = builder.credentials(Credentials::new(c.smtp_username.clone(), c.smtp_password.clone()));
        }
        Ok(builder.build())
    }
}

#[async_trait]
impl JobHandler for MailSender {
    async fn run(&self, ctx: &JobContext) -> anyhow::Result<Option<Json>> {
        let mail: Mail = serde_json::from_value(ctx.payload.clone())?;
        if self.config.mode != "smtp" {
            // Never log the body: it may carry a one-time link or code.
            tracing::info!(to = %mail.to, subject = %mail.subject, "mail not sent (mail.mode = log)");
            return Ok(Some(serde_json::json!({"sent": false, "mode": "log"})));
        }
        let message = Message::builder()
            .from(self.config.from.parse()?)
            .to(mail.to.parse()?)
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body)?;
        self.transport()?.send(message).await?;
        tracing::info!(to = %mail.to, subject = %mail.subject, "mail sent");
        Ok(Some(serde_json::json!({"sent": true})))
    }
}

//! Delivering resume links to customers.
//!
//! [`MailSender`] is the seam: the product plugs in its mail provider; the default,
//! [`LogMailSender`], only records that a link went out. A resume link is a credential,
//! so neither the URL nor the token is ever logged, and of the address only its domain.

use std::time::SystemTime;

use futures::future::BoxFuture;

use crate::identity::email::EmailAddress;

/// One resume link to deliver.
#[derive(Clone)]
pub struct ResumeLinkMail {
    pub conversation_id: String,
    pub email: EmailAddress,
    /// `{PUBLIC_APP_URL}/chat?resume=<token>`: a credential until redeemed or expired.
    pub url: String,
    pub expires_at: SystemTime,
}

impl std::fmt::Debug for ResumeLinkMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResumeLinkMail")
            .field("conversation_id", &self.conversation_id)
            .field("email", &self.email)
            .field("url", &"[redacted]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Why a link could not be handed over for delivery.
#[derive(Debug, thiserror::Error)]
#[error("mail delivery failed: {0}")]
pub struct MailError(pub String);

/// Sends resume links. Implementations must not log the URL.
pub trait MailSender: Send + Sync {
    fn send_resume_link<'a>(
        &'a self,
        mail: &'a ResumeLinkMail,
    ) -> BoxFuture<'a, Result<(), MailError>>;
}

/// The default sender: logs that a link was issued (conversation and the address's
/// domain only) and delivers nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogMailSender;

impl MailSender for LogMailSender {
    fn send_resume_link<'a>(
        &'a self,
        mail: &'a ResumeLinkMail,
    ) -> BoxFuture<'a, Result<(), MailError>> {
        Box::pin(async move {
            tracing::info!(
                conversation_id = %mail.conversation_id,
                email_domain = mail.email.domain(),
                "resume link issued (no mail sender configured; not delivered)"
            );
            Ok(())
        })
    }
}

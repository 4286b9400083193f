//! Issuing a resume link (`POST /api/chat/resume` `{"conversationId","email"}`): a broker,
//! admin or service bearer, or the session of that very conversation. Mints a link token
//! (see [`crate::identity::resume_link`]), builds `{PUBLIC_APP_URL}/chat?resume=<token>`
//! and hands it to the [`MailSender`](super::mail::MailSender). Rate limited per caller
//! and per address, failing closed.

use std::time::{Duration, UNIX_EPOCH};

use http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;

use crate::events::time::iso_seconds;
use crate::handlers::resume::mail::ResumeLinkMail;
use crate::handlers::resume::state::ResumeState;
use crate::identity::email::EmailAddress;
use crate::identity::ids::identifier;
use crate::identity::Caller;
use crate::platform::error::ApiError;
use crate::platform::http::{invalid_body, json_response, RequestContext};

#[derive(Serialize)]
struct IssuedBody {
    /// Staff only: a session's link goes to the mail sender and nowhere else.
    #[serde(rename = "resumeUrl", skip_serializing_if = "Option::is_none")]
    resume_url: Option<String>,
    #[serde(rename = "expiresAt")]
    expires_at: String,
}

pub(super) async fn issue(
    state: &ResumeState,
    req: &Request,
    ctx: &RequestContext,
    conversation_id: Option<String>,
    email: Option<String>,
) -> Result<Response<Body>, ApiError> {
    let caller = state.auth.authenticate(&ctx.method, req.headers())?;
    super::refuse_erased_session(state, &caller).await?;
    let caller_id = caller.id_for_rate_limit();
    ctx.set_caller(caller_id.clone());

    let conversation_id =
        conversation_id.ok_or_else(|| invalid_body("conversationId is required"))?;
    identifier(&conversation_id, "conversationId")?;
    let may_issue = match &caller {
        Caller::User { role, .. } => role.is_staff(),
        Caller::Session {
            conversation_id: own,
            ..
        } => *own == conversation_id,
    };
    if !may_issue {
        return Err(ApiError::forbidden(
            "resume_forbidden",
            "Only staff or this conversation's own session may send a resume link",
        ));
    }
    let email = EmailAddress::parse(&email.ok_or_else(|| invalid_body("email is required"))?)?;
    // A session sends a link only to its own address, and never sees it: a stolen cookie
    // cannot renew itself, nor fixate another browser onto this conversation.
    if let Caller::Session { email: own, .. } = &caller {
        if !email.same_address(own) {
            return Err(ApiError::forbidden(
                "resume_forbidden",
                "A chat session may send a resume link only to its own address",
            ));
        }
    }

    state.caller_limiter.check(&caller_id).await?;
    state.email_limiter.check(&email.fingerprint()).await?;

    let link = state.links.issue(&conversation_id, &email)?;
    let expires_at = UNIX_EPOCH + Duration::from_secs(link.expires_at);
    let mail = ResumeLinkMail {
        conversation_id,
        email,
        url: format!("{}/chat?resume={}", state.config.public_app_url, link.token),
        expires_at,
    };
    if let Err(e) = state.mail.send_resume_link(&mail).await {
        return Err(ApiError::bad_gateway(
            "mail_failed",
            "The resume link could not be sent, please retry",
        )
        .caused_by(anyhow::Error::new(e).context(format!(
            "resume link for conversation {} not delivered",
            mail.conversation_id
        ))));
    }
    Ok(json_response(
        StatusCode::CREATED,
        &IssuedBody {
            resume_url: caller.is_staff().then_some(mail.url),
            expires_at: iso_seconds(link.expires_at).unwrap_or_default(),
        },
    ))
}

//! The `resume` function: `POST|GET /api/chat/resume` (issue and redeem single-use
//! resume links, which set the chat session cookie and hydrate history) and
//! `GET /api/chat/events` (the polling fallback). See [`issue`], [`redeem`], [`poll`].
//!
//! POST bodies are told apart by their keys: `token` redeems, anything else issues.

pub mod issue;
pub mod mail;
pub mod poll;
pub mod redeem;
pub mod state;

use http::Method;
use lambda_http::{Body, Request, Response};

pub use poll::{DEFAULT_POLL_LIMIT, MAX_POLL_LIMIT};
pub use redeem::HYDRATION_EVENTS;
pub use state::{ResumeConfig, ResumeState};

use crate::identity::Caller;
use crate::platform::error::ApiError;
use crate::platform::http::{
    invalid_body, json_object, query_param, serve, string_field, RequestContext, Route, Service,
};

pub const SERVICE: Service = Service {
    name: "resume",
    routes: &[
        Route {
            path: RESUME_PATH,
            methods: &["GET", "POST"],
        },
        Route {
            path: EVENTS_PATH,
            methods: &["GET"],
        },
    ],
    max_body_bytes: 16 * 1024,
};

const RESUME_PATH: &str = "/api/chat/resume";
const EVENTS_PATH: &str = "/api/chat/events";

pub async fn handle(state: &ResumeState, req: Request) -> Response<Body> {
    serve(&SERVICE, &state.config.http, req, |req, ctx| {
        route(state, req, ctx)
    })
    .await
}

async fn route(
    state: &ResumeState,
    req: Request,
    ctx: RequestContext,
) -> Result<Response<Body>, ApiError> {
    match (ctx.route, &ctx.method) {
        (RESUME_PATH, &Method::GET) => {
            let token = query_param(&req, "token")?
                .ok_or_else(|| ApiError::bad_request("missing_token", "token is required"))?;
            redeem::redeem(state, &req, &ctx, &token).await
        }
        (RESUME_PATH, _) => match ResumeBody::parse(req.body().as_ref())? {
            ResumeBody::Redeem { token } => redeem::redeem(state, &req, &ctx, &token).await,
            ResumeBody::Issue {
                conversation_id,
                email,
            } => issue::issue(state, &req, &ctx, conversation_id, email).await,
        },
        _ => poll::poll(state, &req, &ctx).await,
    }
}

/// [`crate::handlers::erased::refuse_erased`] with resume's answer when DynamoDB does not.
async fn refuse_erased(
    state: &ResumeState,
    conversation_id: &str,
    issued_at: u64,
) -> Result<(), ApiError> {
    crate::handlers::erased::refuse_erased(
        &state.erasures,
        conversation_id,
        issued_at,
        ApiError::history_unavailable,
    )
    .await
}

/// [`crate::handlers::erased::refuse_erased_session`] with resume's answer when DynamoDB
/// does not.
async fn refuse_erased_session(state: &ResumeState, caller: &Caller) -> Result<(), ApiError> {
    crate::handlers::erased::refuse_erased_session(
        &state.erasures,
        caller,
        ApiError::history_unavailable,
    )
    .await
}

/// A `POST /api/chat/resume` body, by its keys.
#[derive(Debug, PartialEq, Eq)]
enum ResumeBody {
    Redeem {
        token: String,
    },
    Issue {
        conversation_id: Option<String>,
        email: Option<String>,
    },
}

impl ResumeBody {
    fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let map = json_object(body)?;
        let (token, conversation_id, email) = (
            string_field(&map, "token")?,
            string_field(&map, "conversationId")?,
            string_field(&map, "email")?,
        );
        match token {
            Some(_) if conversation_id.is_some() || email.is_some() => Err(invalid_body(
                "Send either token (to redeem) or conversationId and email (to issue)",
            )),
            Some(token) => Ok(ResumeBody::Redeem { token }),
            None => Ok(ResumeBody::Issue {
                conversation_id,
                email,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_bodies_are_told_apart_by_their_keys() {
        assert_eq!(
            ResumeBody::parse(br#"{"token":"t"}"#).unwrap(),
            ResumeBody::Redeem { token: "t".into() }
        );
        assert_eq!(
            ResumeBody::parse(br#"{"conversationId":"c","email":"a@b.co","extra":1}"#).unwrap(),
            ResumeBody::Issue {
                conversation_id: Some("c".into()),
                email: Some("a@b.co".into())
            }
        );
        assert_eq!(
            ResumeBody::parse(b" ").unwrap(),
            ResumeBody::Issue {
                conversation_id: None,
                email: None
            }
        );
        for bad in [
            &br#"{"token":"t","conversationId":"c"}"#[..],
            br#"{"token":1}"#,
            br#"["token"]"#,
            b"{",
        ] {
            assert_eq!(ResumeBody::parse(bad).unwrap_err().status(), 400);
        }
    }
}

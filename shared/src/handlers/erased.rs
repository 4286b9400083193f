//! Credentials of an erased conversation: a resume link or chat session issued at or
//! before the conversation's erasure admits no one, wherever it is presented (`resume`'s
//! redeem, poll and link issuing; `ably-token`; `ably-publish`). Bearer JWTs are not
//! conversation credentials and are never refused here.

use crate::identity::Caller;
use crate::platform::error::ApiError;
use crate::storage::archive::ArchiveError;
use crate::storage::erasure::{issued_before, ErasureWatch};

/// 401 `conversation_erased` when `conversation_id` was erased at or after `issued_at`
/// (Unix seconds); `unavailable` answers when whether it was cannot be told (DynamoDB not
/// answering): nothing is admitted on a guess.
pub async fn refuse_erased(
    erasures: &ErasureWatch,
    conversation_id: &str,
    issued_at: u64,
    unavailable: fn(ArchiveError) -> ApiError,
) -> Result<(), ApiError> {
    match erasures.erased_at(conversation_id).await {
        Ok(Some(erased_at)) if issued_before(&erased_at, issued_at) => Err(ApiError::unauthorized(
            "conversation_erased",
            "This conversation was erased: links and sessions issued before it no longer admit anyone",
        )),
        Ok(_) => Ok(()),
        Err(err) => Err(unavailable(err)),
    }
}

/// [`refuse_erased`] for a chat session caller; other callers pass without a lookup.
pub async fn refuse_erased_session(
    erasures: &ErasureWatch,
    caller: &Caller,
    unavailable: fn(ArchiveError) -> ApiError,
) -> Result<(), ApiError> {
    match caller {
        Caller::Session {
            conversation_id,
            issued_at,
            ..
        } => refuse_erased(erasures, conversation_id, *issued_at, unavailable).await,
        Caller::User { .. } => Ok(()),
    }
}

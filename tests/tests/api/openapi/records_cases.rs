//! The records function's cases: the AI context, the transcript in every format, reports
//! and erasure.

use serde_json::json;

use super::{auth, case, Answers};
use crate::helpers::*;

pub(super) async fn answers(a: &mut Answers) {
    let app = RecordsApp::new().await;
    let ms = chrono::Utc::now().timestamp_millis() - 60_000;
    let serial = serial_for("oapi");
    deliver(
        &app.events,
        Via::Json,
        "conv-1",
        &[
            ably_create(
                "o:0",
                &serial,
                "customer:user-1",
                "message:user",
                json!({"text": "hi"}),
                ms,
            ),
            ably_edit(
                &serial,
                1,
                "customer:user-1",
                "customer:user-1",
                "message:user",
                json!({"text": "hello"}),
                ms,
            ),
        ],
    )
    .await;
    let f = chat_core::handlers::records::handle;
    let s = &app.state;
    let broker = auth(&bearer("broker-1", "broker", &[]));
    let admin = auth(&bearer("admin-1", "admin", &[]));
    let customer = auth(&bearer("user-1", "customer", &["conv-1"]));
    let b = [("authorization", broker.as_str())];
    let ad = [("authorization", admin.as_str())];
    let c = [("authorization", customer.as_str())];
    let ctx = "/api/chat/context";
    let tr = "/api/chat/transcript";
    a.run(
        |req| f(s, req),
        vec![
            case("context", "GET", "/api/chat/context?conversationId=conv-1").headers(&b),
            case(
                "context: limit",
                "GET",
                "/api/chat/context?conversationId=conv-1&limit=1",
            )
            .headers(&ad),
            case(
                "context: customer",
                "GET",
                "/api/chat/context?conversationId=conv-1",
            )
            .headers(&c),
            case(
                "context: no identity",
                "GET",
                "/api/chat/context?conversationId=conv-1",
            ),
            case("context: no conversation", "GET", ctx).headers(&b),
            case(
                "context: bad limit",
                "GET",
                "/api/chat/context?conversationId=conv-1&limit=0",
            )
            .headers(&b),
            case("context: preflight", "OPTIONS", ctx),
            case(
                "transcript",
                "GET",
                "/api/chat/transcript?conversationId=conv-1",
            )
            .headers(&ad),
            case(
                "transcript: ndjson",
                "GET",
                "/api/chat/transcript?conversationId=conv-1&format=ndjson",
            )
            .headers(&ad),
            case(
                "transcript: csv",
                "GET",
                "/api/chat/transcript?conversationId=conv-1&format=csv",
            )
            .headers(&ad),
            case(
                "transcript: broker",
                "GET",
                "/api/chat/transcript?conversationId=conv-1",
            )
            .headers(&b),
            case(
                "transcript: bad format",
                "GET",
                "/api/chat/transcript?conversationId=conv-1&format=xml",
            )
            .headers(&ad),
            case(
                "transcript: bad cursor",
                "GET",
                "/api/chat/transcript?conversationId=conv-1&after=x",
            )
            .headers(&ad),
            case("transcript: no identity", "GET", tr),
            case("transcript: preflight", "OPTIONS", tr),
            case("reports", "GET", "/api/chat/reports?type=untrusted").headers(&ad),
            case("reports: range", "GET", "/api/chat/reports?type=sla:warning&from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z&limit=5").headers(&ad),
            case("reports: bad type", "GET", "/api/chat/reports?type=message").headers(&ad),
            case("reports: bad cursor", "GET", "/api/chat/reports?type=untrusted&after=x").headers(&ad),
            case("reports: broker", "GET", "/api/chat/reports?type=untrusted").headers(&b),
            case("reports: no identity", "GET", "/api/chat/reports"),
            case("reports: preflight", "OPTIONS", "/api/chat/reports"),
            case("erase", "POST", "/api/chat/erase")
                .headers(&ad)
                .body(r#"{"conversationId":"conv-erase","reason":"data-subject request"}"#),
            case("erase: again", "POST", "/api/chat/erase")
                .headers(&ad)
                .body(r#"{"conversationId":"conv-erase"}"#),
            case(
                "transcript: erased",
                "GET",
                "/api/chat/transcript?conversationId=conv-erase",
            )
            .headers(&ad),
            case("erase: unknown field", "POST", "/api/chat/erase")
                .headers(&ad)
                .body(r#"{"conversationId":"conv-erase","all":true}"#),
            case("erase: not json", "POST", "/api/chat/erase")
                .headers(&ad)
                .body("conv-erase"),
            case("erase: bad conversation", "POST", "/api/chat/erase")
                .headers(&ad)
                .body(r#"{"conversationId":"a b"}"#),
            case("erase: broker", "POST", "/api/chat/erase")
                .headers(&b)
                .body(r#"{"conversationId":"conv-erase"}"#),
            case("erase: no identity", "POST", "/api/chat/erase")
                .body(r#"{"conversationId":"conv-erase"}"#),
            case("erase: preflight", "OPTIONS", "/api/chat/erase"),
        ],
    )
    .await;
}

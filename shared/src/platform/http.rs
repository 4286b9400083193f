//! The HTTP plumbing every function shares: routing on the raw path, request ids, CORS
//! preflight, security headers, JSON responses, the `ApiError` mapping and the one log
//! line per request.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::platform::env::Env;
use crate::platform::error::ApiError;

pub const REQUEST_ID_HEADER: &str = "x-request-id";
const ALLOWED_REQUEST_HEADERS: &str = "authorization, content-type, idempotency-key, x-request-id";
const EXPOSED_HEADERS: &str = "x-request-id, retry-after";

/// HTTP-facing settings every function shares.
#[derive(Debug, Clone, Default)]
pub struct HttpConfig {
    /// The one browser origin allowed by CORS (credentials are allowed, so never `*`).
    pub cors_origin: Option<String>,
}

impl HttpConfig {
    pub fn from_env(env: &mut Env) -> Self {
        let cors_origin = env.optional("CORS_ORIGIN");
        if cors_origin.as_deref() == Some("*") {
            env.problem("CORS_ORIGIN must name one origin, not '*' (credentials are allowed)");
        }
        HttpConfig { cors_origin }
    }
}

/// A path a function answers and the methods it accepts there (OPTIONS is implied).
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub path: &'static str,
    pub methods: &'static [&'static str],
}

/// What a function serves: its routes and the largest request body it reads.
#[derive(Debug, Clone, Copy)]
pub struct Service {
    pub name: &'static str,
    pub routes: &'static [Route],
    pub max_body_bytes: usize,
}

/// Per-request facts a handler may read or add to (the caller id, for the log line).
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub route: &'static str,
    pub method: Method,
    caller: Arc<OnceLock<String>>,
}

impl RequestContext {
    /// Records who the caller is, for the request log line (an id, never a token).
    pub fn set_caller(&self, caller_id: impl Into<String>) {
        let _ = self.caller.set(caller_id.into());
    }

    pub fn caller(&self) -> Option<&str> {
        self.caller.get().map(String::as_str)
    }
}

/// Runs `handler` for one request with everything around it: route and method checks,
/// body size limit, CORS, request id, security headers, error mapping and the log line.
/// Always returns a response: client and server errors alike become JSON bodies.
pub async fn serve<F, Fut>(
    service: &Service,
    http: &HttpConfig,
    req: Request,
    handler: F,
) -> Response<Body>
where
    F: FnOnce(Request, RequestContext) -> Fut,
    Fut: Future<Output = Result<Response<Body>, ApiError>>,
{
    let started = Instant::now();
    let request_id = request_id_for(req.headers());
    let origin = req
        .headers()
        .get(http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let path = request_path(&req);
    let method = req.method().clone();
    let route = service
        .routes
        .iter()
        .find(|r| r.path == path.trim_end_matches('/') || r.path == path);

    let ctx = RequestContext {
        request_id: request_id.clone(),
        route: route.map_or("unmatched", |r| r.path),
        method: method.clone(),
        caller: Arc::new(OnceLock::new()),
    };

    let outcome = match route {
        None => Err(ApiError::not_found("not_found", "Not found")),
        Some(route) if method == Method::OPTIONS => Ok(preflight(route, http, origin.as_deref())),
        Some(route) if !route.methods.iter().any(|m| *m == method.as_str()) => {
            Err(ApiError::MethodNotAllowed {
                allow: route.methods,
            })
        }
        Some(_) if req.body().len() > service.max_body_bytes => Err(ApiError::payload_too_large(
            "payload_too_large",
            format!("Request body exceeds {} bytes", service.max_body_bytes),
        )),
        Some(_) => handler(req, ctx.clone()).await,
    };

    let mut response = match outcome {
        Ok(response) => response,
        Err(err) => {
            log_error(&err, &ctx);
            error_response(&err, &request_id)
        }
    };
    finish_headers(response.headers_mut(), &request_id, http, origin.as_deref());

    tracing::info!(
        function = service.name,
        route = ctx.route,
        method = %method,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        request_id = %request_id,
        caller_id = ctx.caller().unwrap_or("-"),
        "request"
    );
    response
}

/// When work for this request must be done: the Lambda's own deadline less `margin`
/// (time to answer), or `fallback` from now when there is no Lambda context.
pub fn deadline(req: &Request, margin: Duration, fallback: Duration) -> Instant {
    deadline_of(req.lambda_context_ref(), margin, fallback)
}

/// The same for any invocation, from its Lambda context.
pub fn deadline_of(
    context: Option<&lambda_http::Context>,
    margin: Duration,
    fallback: Duration,
) -> Instant {
    let now = Instant::now();
    let budget = context
        .and_then(|ctx| {
            let now_ms = u64::try_from(crate::platform::clock::now_ms()).ok()?;
            ctx.deadline.checked_sub(now_ms)
        })
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
        .unwrap_or(fallback);
    now + budget.saturating_sub(margin)
}

/// The path to route on: API Gateway's raw path (without the stage), else the URI path.
pub fn request_path(req: &Request) -> String {
    let raw = req.raw_http_path();
    if raw.is_empty() {
        req.uri().path().to_owned()
    } else {
        raw.to_owned()
    }
}

/// Echoes a well-formed `x-request-id`, else generates one.
pub fn request_id_for(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 128
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        })
        .map(str::to_owned)
        .unwrap_or_else(generate_request_id)
}

fn generate_request_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    // Shaped like a version 4 UUID, the form API Gateway and Lambda use for their ids.
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn preflight(route: &Route, http: &HttpConfig, origin: Option<&str>) -> Response<Body> {
    let mut response = empty_response(StatusCode::NO_CONTENT);
    if cors_allows(http, origin) {
        let mut methods = route.methods.join(", ");
        methods.push_str(", OPTIONS");
        let headers = response.headers_mut();
        insert(headers, "access-control-allow-methods", &methods);
        insert(
            headers,
            "access-control-allow-headers",
            ALLOWED_REQUEST_HEADERS,
        );
        insert(headers, "access-control-max-age", "600");
    }
    response
}

fn cors_allows(http: &HttpConfig, origin: Option<&str>) -> bool {
    matches!((http.cors_origin.as_deref(), origin), (Some(allowed), Some(origin)) if allowed == origin)
}

fn finish_headers(
    headers: &mut HeaderMap,
    request_id: &str,
    http: &HttpConfig,
    origin: Option<&str>,
) {
    insert(headers, REQUEST_ID_HEADER, request_id);
    insert(headers, "x-content-type-options", "nosniff");
    insert(headers, "x-frame-options", "DENY");
    if !headers.contains_key(http::header::CACHE_CONTROL) {
        insert(headers, "cache-control", "no-store");
    }
    if !headers.contains_key(http::header::REFERRER_POLICY) {
        insert(headers, "referrer-policy", "no-referrer");
    }
    if http.cors_origin.is_some() {
        headers.append(http::header::VARY, HeaderValue::from_static("origin"));
    }
    if let (true, Some(origin)) = (cors_allows(http, origin), origin) {
        insert(headers, "access-control-allow-origin", origin);
        insert(headers, "access-control-allow-credentials", "true");
        insert(headers, "access-control-expose-headers", EXPOSED_HEADERS);
    }
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), value);
    }
}

/// The one log line of a failed request's server error, with its whole cause chain
/// (`{:#}`); handlers never put secrets into errors. Client errors are not logged here.
fn log_error(err: &ApiError, ctx: &RequestContext) {
    if err.status().is_server_error() {
        let cause = match err.cause() {
            Some(cause) => format!("{cause:#}"),
            None => err.to_string(),
        };
        tracing::error!(request_id = %ctx.request_id, route = ctx.route, code = err.code(), error = %cause, "request failed");
    }
}

/// The JSON error body `{"error","code","requestId"}` with the right status and headers.
pub fn error_response(err: &ApiError, request_id: &str) -> Response<Body> {
    #[derive(Serialize)]
    struct ErrorBody<'a> {
        error: String,
        code: &'a str,
        #[serde(rename = "requestId")]
        request_id: &'a str,
    }
    let mut response = json_response(
        err.status(),
        &ErrorBody {
            error: err.public_message(),
            code: err.code(),
            request_id,
        },
    );
    if let Some(secs) = err.retry_after_secs() {
        insert(response.headers_mut(), "retry-after", &secs.to_string());
    }
    if let ApiError::MethodNotAllowed { allow } = err {
        let mut allow = allow.join(", ");
        allow.push_str(", OPTIONS");
        insert(response.headers_mut(), "allow", &allow);
    }
    response
}

/// A JSON response. Serialising our own response types cannot fail; if it ever did, the
/// caller gets a well-formed 500 rather than a panic.
pub fn json_response<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response<Body> {
    let (status, text) = match serde_json::to_string(body) {
        Ok(text) => (status, text),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":"Internal error","code":"internal_error"}"#.to_owned(),
        ),
    };
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub fn empty_response(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = status;
    response
}

/// Parses JSON bytes into `T`: 400 `invalid_json` when it is not JSON, `invalid_body`
/// (with serde's reason, truncated) when it does not have the expected shape.
pub fn parse_json<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_json",
            "Request body is required",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let mut reason = e.to_string();
        reason.truncate(200);
        if e.is_syntax() || e.is_eof() {
            ApiError::bad_request("invalid_json", "Request body is not valid JSON")
        } else {
            ApiError::bad_request("invalid_body", format!("Invalid request body: {reason}"))
        }
    })
}

/// A body holding one JSON object, its fields read by name; an empty (or all-whitespace)
/// body is an empty object. 400 `invalid_json` when it is not JSON, `invalid_body` when
/// it is not an object.
pub fn json_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(invalid_body("Request body must be a JSON object")),
        Err(_) => Err(ApiError::bad_request(
            "invalid_json",
            "Request body is not valid JSON",
        )),
    }
}

/// A string field of a [`json_object`] body: `None` when absent or `null`, 400
/// `invalid_body` when it holds anything but a string.
pub fn string_field(map: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid_body(format!("{name} must be a string"))),
    }
}

/// A query parameter given at most once; empty counts as absent.
pub fn query_param(req: &Request, name: &str) -> Result<Option<String>, ApiError> {
    let values = req
        .query_string_parameters_ref()
        .and_then(|q| q.all(name))
        .unwrap_or_default();
    match values.as_slice() {
        [] => Ok(None),
        [""] => Ok(None),
        [value] => Ok(Some((*value).to_owned())),
        _ => Err(ApiError::bad_request(
            "invalid_query",
            format!("{name} must be given once"),
        )),
    }
}

/// 400 `invalid_body`: the body is JSON but not what the route takes.
pub fn invalid_body(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_body", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origin_is_one_origin_never_a_wildcard() {
        let mut env = Env::from_pairs([("CORS_ORIGIN", "*")]);
        HttpConfig::from_env(&mut env);
        assert!(env
            .finish()
            .unwrap_err()
            .to_string()
            .contains("CORS_ORIGIN"));
        let mut env = Env::from_pairs([("CORS_ORIGIN", "https://app.example")]);
        let config = HttpConfig::from_env(&mut env);
        assert_eq!(config.cors_origin.as_deref(), Some("https://app.example"));
    }

    #[test]
    fn json_object_bodies_and_their_string_fields() {
        let map = json_object(br#"{"a":"x","b":null,"c":1}"#).unwrap();
        assert_eq!(string_field(&map, "a").unwrap().as_deref(), Some("x"));
        assert_eq!(string_field(&map, "b").unwrap(), None);
        assert_eq!(string_field(&map, "z").unwrap(), None);
        assert_eq!(string_field(&map, "c").unwrap_err().code(), "invalid_body");
        assert!(json_object(b" \n").unwrap().is_empty());
        assert_eq!(json_object(b"[1]").unwrap_err().code(), "invalid_body");
        assert_eq!(json_object(b"{").unwrap_err().code(), "invalid_json");
    }

    #[test]
    fn request_ids_are_echoed_only_when_well_formed() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_static("abc-123"));
        assert_eq!(request_id_for(&headers), "abc-123");
        headers.insert(
            REQUEST_ID_HEADER,
            HeaderValue::from_static("bad id<script>"),
        );
        let generated = request_id_for(&headers);
        assert_ne!(generated, "bad id<script>");
        assert_eq!(generated.len(), 36);
        assert_eq!(generated.as_bytes()[14], b'4');
        assert_ne!(
            request_id_for(&HeaderMap::new()),
            request_id_for(&HeaderMap::new())
        );
    }
}

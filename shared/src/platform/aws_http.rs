//! The AWS SDK's HTTP client, over the `reqwest` client the functions already carry.
//!
//! The SDK's own default client brings a second HTTP and TLS stack (hyper-rustls with
//! the native certificate store, scanned at cold start); this adapter sends the SDK's
//! signed requests with reqwest (rustls on aws-lc, webpki roots) instead. Transport
//! failures are classified the way the SDK's retry strategy expects: timeouts as
//! timeouts, connection failures and broken exchanges as I/O errors (both retried),
//! requests that could not be built as user errors (not retried).

use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;

/// An SDK [`HttpClient`] sending every request with one shared `reqwest::Client`.
///
/// The connect timeout is the reqwest client's own; the SDK's per-attempt and
/// per-operation timeouts bound the rest of each exchange.
#[derive(Debug, Clone)]
pub struct ReqwestHttpClient {
    http: reqwest::Client,
}

impl ReqwestHttpClient {
    pub fn new(http: reqwest::Client) -> Self {
        ReqwestHttpClient { http }
    }

    /// A client with its own connection pool: `connect_timeout` to establish a connection,
    /// no overall timeout (the SDK's attempt timeout applies).
    pub fn with_connect_timeout(connect_timeout: Duration) -> Self {
        crate::platform::telemetry::install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(Duration::from_secs(50))
            // As the SDK's own client: a signed request is never re-sent to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            // Building only fails when the TLS backend cannot initialise, which no request can fix.
            .unwrap_or_else(|_| reqwest::Client::new());
        Self::new(http)
    }
}

impl HttpClient for ReqwestHttpClient {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

impl HttpConnector for ReqwestHttpClient {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let http = self.http.clone();
        HttpConnectorFuture::new(async move {
            let request = to_reqwest(request)?;
            let response = http.execute(request).await.map_err(classify)?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(classify)?;
            let mut answer = http::Response::new(SdkBody::from(body));
            *answer.status_mut() = status;
            *answer.headers_mut() = headers;
            HttpResponse::try_from(answer).map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

fn to_reqwest(request: HttpRequest) -> Result<reqwest::Request, ConnectorError> {
    let request = request
        .try_into_http1x()
        .map_err(|e| ConnectorError::user(e.into()))?;
    let (parts, body) = request.into_parts();
    // DynamoDB requests are JSON documents held in memory; a streaming body cannot be sent.
    let bytes = body
        .bytes()
        .ok_or_else(|| ConnectorError::user("streaming request bodies are not supported".into()))?;
    let request = http::Request::from_parts(parts, Bytes::copy_from_slice(bytes));
    reqwest::Request::try_from(request).map_err(|e| ConnectorError::user(e.into()))
}

fn classify(err: reqwest::Error) -> ConnectorError {
    if err.is_timeout() {
        ConnectorError::timeout(err.into())
    } else if err.is_builder() {
        ConnectorError::user(err.into())
    } else if err.is_connect() || err.is_request() || err.is_body() || err.is_decode() {
        ConnectorError::io(err.into())
    } else {
        ConnectorError::other(err.into(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_closed_port_is_an_io_error_and_a_silent_server_a_timeout() {
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let client = ReqwestHttpClient::with_connect_timeout(Duration::from_secs(2));
        let request = HttpRequest::get(format!("http://127.0.0.1:{closed}/")).unwrap();
        let err = client.call(request).await.unwrap_err();
        assert!(err.is_io(), "{err:?}");

        // Accepts and never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let _keep = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = silent.accept().await {
                held.push(stream);
            }
        });
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let request = HttpRequest::get(format!("http://{addr}/")).unwrap();
        let err = ReqwestHttpClient::new(http)
            .call(request)
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
    }
}

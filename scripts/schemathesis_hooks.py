"""Schemathesis hooks for scripts/fuzz-api (loaded through SCHEMATHESIS_HOOKS).

- Every generated Ably webhook request that has a signature header is signed as Ably
  would sign it: the signature is
  computed over the exact bytes sent (a requests auth callable runs after the body is
  serialised), with the first key of ABLY_WEBHOOK_KEYS, else ABLY_WEBHOOK_SIGNING_KEY,
  the dedicated keys the ably-events function verifies with (never ABLY_API_KEY).
- Generated bodies that are not UTF-8 are made UTF-8 (see before_call).
- `no_undocumented_server_error` replaces schemathesis's `not_a_server_error`: a 5xx is
  a failure unless openapi.yaml documents that status for the operation (the local
  stack has no Ably, so publish answers its documented 503), and a 500 always is.
"""

import base64
import hashlib
import hmac
import os

import requests
import schemathesis

WEBHOOK_PATH = "/api/ably/events"


def _webhook_key() -> tuple[str, str]:
    keys = os.environ.get("ABLY_WEBHOOK_KEYS", "").strip()
    if keys:
        first = keys.split(",")[0].strip()
        name, _, secret = first.partition(":")
        return name, secret
    legacy = os.environ.get("ABLY_WEBHOOK_SIGNING_KEY", "").strip()
    if legacy:
        return "", legacy
    raise RuntimeError("ABLY_WEBHOOK_KEYS (name:secret) is needed to sign webhook bodies")


class AblyWebhookSignature(requests.auth.AuthBase):
    """Sets X-Ably-Key and X-Ably-Signature for the body as it goes on the wire."""

    def __init__(self) -> None:
        self.key_name, self.secret = _webhook_key()

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        digest = hmac.new(self.secret.encode("utf-8"), body, hashlib.sha256).digest()
        if self.key_name:
            request.headers["X-Ably-Key"] = self.key_name
        request.headers["X-Ably-Signature"] = base64.b64encode(digest).decode("ascii")
        return request


_SIGNER = None


@schemathesis.hook
def before_call(context, case, kwargs):
    global _SIGNER
    # cargo lambda's local API Gateway answers a bare 500 of its own to a body that is not
    # UTF-8, before any function sees it (API Gateway base64-encodes such bodies, and the
    # handlers read bytes). Keep such generated bodies broken, but as UTF-8.
    if isinstance(case.body, (bytes, bytearray)):
        try:
            bytes(case.body).decode("utf-8")
        except UnicodeDecodeError:
            case.body = bytes(case.body).decode("utf-8", "replace").encode("utf-8")
    headers = {name.lower() for name in (case.headers or {})}
    # Signed whenever the generated case carries a signature (a case without one tests
    # the missing header, and must stay without).
    if case.operation.path == WEBHOOK_PATH and "x-ably-signature" in headers:
        if _SIGNER is None:
            _SIGNER = AblyWebhookSignature()
        kwargs["auth"] = _SIGNER


@schemathesis.check
def no_undocumented_server_error(ctx, response, case):
    """A 5xx only where openapi.yaml documents it, and never a 500."""
    status = response.status_code
    if status < 500:
        return None
    documented = {str(code) for code in case.operation.responses.status_codes}
    if status == 500 or str(status) not in documented:
        raise AssertionError(
            f"Server error {status} on {case.method.upper()} {case.operation.path}: "
            f"{response.text[:300]}"
        )
    return None


@schemathesis.deserializer("application/x-ndjson")
def ndjson(ctx, response):
    """The transcript's NDJSON: one JSON item per line, validated as the array
    openapi.yaml describes."""
    import json

    text = response.content.decode(response.encoding or "utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]

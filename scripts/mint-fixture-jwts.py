#!/usr/bin/env python3
"""Regenerates the sample events under events/ (API Gateway HTTP API v2 payloads).

The bearer JWTs are minted with the JWT_SECRET of .env.example (HS256, fixed iat/exp so
the output is byte-for-byte reproducible) and the webhook is signed with the secret of
its first ABLY_WEBHOOK_KEYS key (the dedicated webhook key), exactly as Ably signs a batched webhook: base64(HMAC-SHA256(secret,
body bytes)). Standard library only.

    python3 scripts/mint-fixture-jwts.py
"""

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"

ISSUED_AT = 1700000000
EXPIRES_AT = 4102444800  # 2100-01-01
SOURCE_IP = "198.51.100.23"
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
API_ID = "a1b2c3d4e5"
DOMAIN = f"{API_ID}.execute-api.us-east-1.amazonaws.com"


def dev_env():
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def mint_jwt(secret: str, claims: dict) -> str:
    signing_input = b64url(compact({"alg": "HS256", "typ": "JWT"})) + "." + b64url(compact(claims))
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature)


def sign_webhook(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def claims(user_id, role, conversations=None):
    out = {"userId": user_id, "role": role}
    if conversations is not None:
        out["conversations"] = conversations
    out["iat"] = ISSUED_AT
    out["exp"] = EXPIRES_AT
    return out


def http_event(name, method, path, *, query=None, headers=None, body=None, user_agent=BROWSER_UA, seq=0):
    """An HTTP API (payload format 2.0) event as API Gateway hands it to the function."""
    digest = hashlib.sha256(name.encode()).digest()
    request_id = base64.b64encode(digest[:10]).decode().rstrip("=").replace("+", "A").replace("/", "B") + "="
    epoch_ms = (ISSUED_AT + 60 * seq) * 1000
    all_headers = {
        "accept": "application/json",
        "host": DOMAIN,
        "user-agent": user_agent,
        "x-amzn-trace-id": f"Root=1-{ISSUED_AT + 60 * seq:08x}-{digest[10:22].hex()}",
        "x-forwarded-for": SOURCE_IP,
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    if body is not None:
        all_headers["content-length"] = str(len(body.encode()))
    all_headers.update(headers or {})
    event = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "headers": dict(sorted(all_headers.items())),
    }
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = {
        "accountId": "123456789012",
        "apiId": API_ID,
        "domainName": DOMAIN,
        "domainPrefix": API_ID,
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": SOURCE_IP,
            "userAgent": user_agent,
        },
        "requestId": request_id,
        "routeKey": f"{method} {path}",
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch_ms // 1000)),
        "timeEpoch": epoch_ms,
    }
    if body is not None:
        event["body"] = body
    event["isBase64Encoded"] = False
    return event


def webhook_body() -> bytes:
    """A batched Ably webhook (one channel.message item, two messages) on conversation:conv-1."""
    messages = [
        {
            "id": "devConnA1b2:0:0",
            "clientId": "dev-user",
            "connectionId": "devConnA1b2",
            "timestamp": 1700000000000,
            "encoding": "json",
            "data": compact({"text": "hello"}).decode(),
            "name": "message:user",
        },
        {
            "id": "devConnC3d4:0:0",
            "clientId": "dev-broker",
            "connectionId": "devConnC3d4",
            "timestamp": 1700000001250,
            "encoding": "json",
            "data": compact(
                {"text": "Hi! How can I help?", "timing": {"ai_duration_ms": 830, "queue_duration_ms": 42}}
            ).decode(),
            "name": "message:ai",
        },
    ]
    batch = {
        "items": [
            {
                "webhookId": "devHk1",
                "source": "channel.message",
                "serial": "devSerial0123456789:0",
                "timestamp": 1700000001400,
                "name": "channel.message",
                "data": {"channelId": "conversation:conv-1", "site": "us-east-1-A", "messages": messages},
            }
        ]
    }
    return compact(batch)  # minified, no trailing newline: the signature covers these exact bytes


def write(relative, content):
    path = EVENTS / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(json.dumps(content, indent=2) + "\n")
    print(f"wrote events/{relative}")


def main():
    env = dev_env()
    jwt_secret = env["JWT_SECRET"]
    key_name, key_secret = env["ABLY_WEBHOOK_KEYS"].split(",")[0].strip().split(":", 1)
    origin = env["CORS_ORIGIN"]

    customer = mint_jwt(jwt_secret, claims("dev-user", "customer", ["conv-1"]))
    broker = mint_jwt(jwt_secret, claims("dev-broker", "broker"))
    admin = mint_jwt(jwt_secret, claims("dev-admin", "admin"))
    json_body = {"content-type": "application/json", "origin": origin}

    write("ably-token/no-auth.json", http_event("token-no-auth", "POST", "/api/ably/token", headers=json_body, body="{}"))
    write(
        "ably-token/customer.json",
        http_event(
            "token-customer",
            "POST",
            "/api/ably/token",
            headers={**json_body, "authorization": f"Bearer {customer}"},
            body="{}",
            seq=1,
        ),
    )
    write(
        "ably-token/preflight.json",
        http_event(
            "token-preflight",
            "OPTIONS",
            "/api/ably/token",
            headers={
                "accept": "*/*",
                "access-control-request-headers": "authorization,content-type",
                "access-control-request-method": "POST",
                "origin": origin,
            },
            seq=2,
        ),
    )
    write(
        "ably-publish/customer.json",
        http_event(
            "publish-customer",
            "POST",
            "/api/ably/publish",
            headers={**json_body, "authorization": f"Bearer {customer}"},
            body=compact(
                {"channelName": "conversation:conv-1", "eventName": "message:user", "data": {"text": "hello"}}
            ).decode(),
            seq=3,
        ),
    )

    body = webhook_body()
    write("ably-events/batched-message-body.json", body)
    webhook_headers = {"content-type": "application/json", "x-ably-key": key_name}
    write(
        "ably-events/batched-message.json",
        http_event(
            "events-batched-message",
            "POST",
            "/api/ably/events",
            headers={**webhook_headers, "x-ably-signature": sign_webhook(key_secret, body)},
            body=body.decode(),
            user_agent="Ably-Webhooks",
            seq=4,
        ),
    )
    write(
        "ably-events/bad-signature.json",
        http_event(
            "events-bad-signature",
            "POST",
            "/api/ably/events",
            headers={**webhook_headers, "x-ably-signature": sign_webhook("not-the-key-secret", body)},
            body=body.decode(),
            user_agent="Ably-Webhooks",
            seq=5,
        ),
    )

    write(
        "ably-stats/admin.json",
        http_event(
            "stats-admin",
            "GET",
            "/api/ably/stats",
            headers={"authorization": f"Bearer {admin}", "origin": origin},
            seq=6,
        ),
    )

    write(
        "resume/issue.json",
        http_event(
            "resume-issue",
            "POST",
            "/api/chat/resume",
            headers={**json_body, "authorization": f"Bearer {broker}"},
            body=compact({"conversationId": "conv-1", "email": "dev@example.com"}).decode(),
            seq=7,
        ),
    )
    write(
        "resume/redeem-bad-token.json",
        http_event(
            "resume-redeem-bad-token",
            "GET",
            "/api/chat/resume",
            query={"token": "not-a-token"},
            headers={"accept": "text/html,application/json"},
            seq=8,
        ),
    )
    write(
        "resume/poll-events.json",
        http_event(
            "resume-poll-events",
            "GET",
            "/api/chat/events",
            query={"conversationId": "conv-1", "limit": "20"},
            headers={"authorization": f"Bearer {customer}", "origin": origin},
            seq=9,
        ),
    )

    write(
        "chat-records/context.json",
        http_event(
            "records-context",
            "GET",
            "/api/chat/context",
            query={"conversationId": "conv-1", "limit": "20"},
            headers={"authorization": f"Bearer {broker}"},
            seq=10,
        ),
    )
    write(
        "chat-records/transcript-csv.json",
        http_event(
            "records-transcript-csv",
            "GET",
            "/api/chat/transcript",
            query={"conversationId": "conv-1", "format": "csv"},
            headers={"authorization": f"Bearer {admin}"},
            seq=11,
        ),
    )


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Regenerates the sample events of Ably's other delivery paths into ably-events.

    python3 events/ably-events/generate.py     # needs msgpack: pip install --user msgpack

- direct-invoke.json, direct-invoke-presence.json: the event of Ably's AWS Lambda rule
  (enveloped), exactly the payload Ably invokes the function with.
- sqs.json: an SQS event as Lambda's event source mapping delivers it, two records, each
  body one enveloped message as Ably's Firehose AWS SQS rule sends it.
- kinesis.json: a Kinesis event as the event source mapping delivers it, two records of
  Ably's Firehose AWS Kinesis rule (partition key #{channelName}): one JSON, one MsgPack.
- non-enveloped-webhook.json: an API Gateway event of a single, non-enveloped webhook
  (metadata in x-ably-envelope-* / x-ably-message-* headers, the message data as body).
- msgpack-webhook.json: an API Gateway event of a batched webhook in MsgPack, base64 as
  API Gateway hands a binary body to Lambda.

The two webhooks are signed like the other samples (scripts/mint-fixture-jwts.py, whose
helpers this reuses): X-Ably-Key and X-Ably-Signature = base64(HMAC-SHA256(secret, body
bytes)) with the first ABLY_WEBHOOK_KEYS key of .env.example. The output is byte-for-byte reproducible.
"""

import base64
import hashlib
import importlib.util
import json
from pathlib import Path

try:
    import msgpack
except ImportError:  # pragma: no cover
    raise SystemExit("needs the msgpack package: pip install --user msgpack")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

_spec = importlib.util.spec_from_file_location("fixtures", ROOT / "scripts" / "mint-fixture-jwts.py")
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)

APP_ID = "aBCdEf"
RULE_ID = "1-a2Bc"
SITE = "eu-central-1-A"
CHANNEL = "conversation:c-1"
ACCOUNT = "123456789012"
REGION = "us-east-1"


def compact(value) -> bytes:
    return fixtures.compact(value)


def message(msg_id, client_id, connection_id, timestamp, name, data):
    """One Ably message as the rules send it: JSON data as a string with encoding json."""
    return {
        "id": msg_id,
        "clientId": client_id,
        "connectionId": connection_id,
        "timestamp": timestamp,
        "name": name,
        "data": compact(data).decode(),
        "encoding": "json",
    }


def envelope(key, entries):
    """An enveloped single delivery: {source, appId, channel, site, ruleId, messages|presence}."""
    return {
        "source": "channel.presence" if key == "presence" else "channel.message",
        "appId": APP_ID,
        "channel": CHANNEL,
        "site": SITE,
        "ruleId": RULE_ID,
        key: entries,
    }


CUSTOMER_HI = message("ABcDefgHIj:1:0", "customer:u-1", "ABcDefgHIj", 1700000000000, "message:user", {"text": "hi"})
BROKER_REPLY = message(
    "KLmNopqRSt:1:0",
    "broker:a-1",
    "KLmNopqRSt",
    1700000001250,
    "message:ai",
    {"text": "Hi! How can I help?", "timing": {"ai_duration_ms": 830, "queue_duration_ms": 42}},
)
BROKER_ENTERS = {
    "id": "KLmNopqRSt:2:0",
    "clientId": "broker:a-1",
    "connectionId": "KLmNopqRSt",
    "timestamp": 1700000000500,
    "action": 2,  # enter
    "data": compact({"status": "available"}).decode(),
    "encoding": "json",
}


def sqs_record(seq, body: bytes):
    digest = hashlib.sha256(f"sqs-{seq}".encode()).hexdigest()
    sent = 1700000000100 + 1000 * seq
    return {
        "messageId": f"{digest[0:8]}-{digest[8:12]}-4{digest[13:16]}-8{digest[17:20]}-{digest[20:32]}",
        "receiptHandle": "AQEB" + base64.b64encode(hashlib.sha512(f"receipt-{seq}".encode()).digest()).decode(),
        "body": body.decode(),
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(sent),
            # Ably sends as the integration role it assumed: role id and session name.
            "SenderId": "AROAEXAMPLEABLYROLE01:ably-integration",
            "ApproximateFirstReceiveTimestamp": str(sent + 20),
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:chat-AblyEventsQueue-EXAMPLE",
        "awsRegion": REGION,
    }


def kinesis_record(seq, data: bytes, arrival):
    sequence_number = str(49647175477590183455093164235287283427318712734118707202 + 10**20 * seq)
    shard = "shardId-000000000000"
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": CHANNEL,
            "sequenceNumber": sequence_number,
            "data": base64.b64encode(data).decode(),
            "approximateArrivalTimestamp": arrival,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard}:{sequence_number}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": f"arn:aws:iam::{ACCOUNT}:role/chat-AblyEventsFunctionRole-EXAMPLE",
        "awsRegion": REGION,
        "eventSourceARN": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/chat-AblyEventsStream-EXAMPLE",
    }


def signed_webhook(name, body: bytes, headers, seq, *, binary=False):
    """An API Gateway (HTTP API v2) event of a webhook whose exact body bytes are signed."""
    env = fixtures.dev_env()
    key_name, key_secret = env["ABLY_WEBHOOK_KEYS"].split(",")[0].strip().split(":", 1)
    all_headers = {
        **headers,
        "x-ably-key": key_name,
        "x-ably-signature": fixtures.sign_webhook(key_secret, body),
        "x-ably-version": "1.2",
    }
    text = base64.b64encode(body).decode() if binary else body.decode()
    event = fixtures.http_event(
        name, "POST", "/api/ably/events", headers=all_headers, body=text, user_agent="Ably-Webhooks", seq=seq
    )
    # http_event counts the characters of the body it is given; API Gateway reports the
    # bytes it received, before base64.
    event["headers"]["content-length"] = str(len(body))
    event["isBase64Encoded"] = binary
    return event


def write(name, value):
    path = HERE / name
    path.write_text(json.dumps(value, indent=2) + "\n")
    print(f"wrote events/ably-events/{name}")


def main():
    write("direct-invoke.json", envelope("messages", [CUSTOMER_HI]))
    write("direct-invoke-presence.json", envelope("presence", [BROKER_ENTERS]))

    write(
        "sqs.json",
        {
            "Records": [
                sqs_record(0, compact(envelope("messages", [CUSTOMER_HI]))),
                sqs_record(1, compact(envelope("messages", [BROKER_REPLY]))),
            ]
        },
    )

    write(
        "kinesis.json",
        {
            "Records": [
                kinesis_record(0, compact(envelope("messages", [CUSTOMER_HI])), 1700000000.112),
                # The same rule with the MsgPack encoding.
                kinesis_record(1, msgpack.packb(envelope("messages", [BROKER_REPLY])), 1700000001.318),
            ]
        },
    )

    data = compact({"text": "hi"})
    write(
        "non-enveloped-webhook.json",
        signed_webhook(
            "events-non-enveloped",
            data,
            {
                "content-type": "application/json",
                "x-ably-envelope-appid": APP_ID,
                "x-ably-envelope-channel": CHANNEL,
                "x-ably-envelope-rule-id": RULE_ID,
                "x-ably-envelope-site": SITE,
                "x-ably-envelope-source": "channel.message",
                "x-ably-message-client-id": CUSTOMER_HI["clientId"],
                "x-ably-message-connection-id": CUSTOMER_HI["connectionId"],
                "x-ably-message-id": CUSTOMER_HI["id"],
                "x-ably-message-name": CUSTOMER_HI["name"],
                "x-ably-message-timestamp": str(CUSTOMER_HI["timestamp"]),
            },
            seq=10,
        ),
    )

    batch = {
        "items": [
            {
                "webhookId": "ABcDEf",
                "source": "channel.message",
                "serial": "a7bcdEFghIjklm123456789:4",
                "timestamp": 1700000001400,
                "name": "channel.message",
                "data": {"channelId": CHANNEL, "site": SITE, "messages": [CUSTOMER_HI, BROKER_REPLY]},
            },
            {
                "webhookId": "ABcDEf",
                "source": "channel.presence",
                "serial": "a7bcdEFghIjklm123456789:5",
                "timestamp": 1700000001500,
                "name": "presence.message",
                "data": {"channelId": CHANNEL, "site": SITE, "presence": [BROKER_ENTERS]},
            },
        ]
    }
    write(
        "msgpack-webhook.json",
        signed_webhook(
            "events-msgpack", msgpack.packb(batch), {"content-type": "application/x-msgpack"}, seq=11, binary=True
        ),
    )


if __name__ == "__main__":
    main()

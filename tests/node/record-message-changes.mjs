// Records what the real Ably JavaScript client sends to change a message, as fixtures
// for the Rust integration tests (`tests/tests/api/publish_changes/`): the request of
// `getMessage`, `updateMessage`, `deleteMessage` and `appendMessage` (method, path,
// query, JSON body), against a local HTTP server standing in for Ably's REST API.
//
// Run: node tests/node/record-message-changes.mjs [output dir]
// (default: tests/fixtures/ably-js beside this folder). Rerun after upgrading `ably`.

import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ably from 'ably';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] || path.join(here, '..', 'fixtures', 'ably-js');
const pkg = JSON.parse(fs.readFileSync(path.join(here, 'node_modules', 'ably', 'package.json')));

// The change each fixture records: the same channel, serial and content the Rust
// tests send through `POST /api/ably/publish`.
const CHANNEL = 'conversation:conv-1';
const SERIAL = '01726232498871-001@e8FcVjXqBAmH3q:001';
const VERSION_SERIAL = '01726232512345-000@e8FcVjXqBAmH3q:000';
const ORIGINAL = {
  serial: SERIAL,
  name: 'message:user',
  data: 'hello',
  clientId: 'customer:u-1',
  timestamp: 1726232498871,
  action: 0,
  version: { serial: SERIAL, timestamp: 1726232498871 },
};

const recorded = [];

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const url = new URL(req.url, 'http://ably');
    const text = Buffer.concat(chunks).toString();
    recorded.push({
      method: req.method,
      path: req.url.split('?')[0],
      query: Object.fromEntries(url.searchParams),
      contentType: req.headers['content-type'] ?? null,
      body: text ? JSON.parse(text) : null,
    });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(req.method === 'PATCH' ? { versionSerial: VERSION_SERIAL } : ORIGINAL));
  });
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));

const client = new Ably.Rest({
  key: 'app.key:secret',
  endpoint: '127.0.0.1',
  port: server.address().port,
  tls: false,
  useBinaryProtocol: false,
  logLevel: 0,
});
const channel = client.channels.get(CHANNEL);

// One line each: the fixture quotes the call's source.
const calls = {
  'get': () => channel.getMessage(SERIAL),
  'patch-update': () => channel.updateMessage({ serial: SERIAL, name: 'message:user', data: { text: 'hello, edited' } }, { clientId: 'customer:u-1', description: 'typo', metadata: { reason: 'spelling' } }),
  'patch-delete': () => channel.deleteMessage({ serial: SERIAL }, { clientId: 'admin:a-1', description: 'moderated' }),
  'patch-append': () => channel.appendMessage({ serial: SERIAL, name: 'message:ai', data: ' and more' }, { clientId: 'broker:b-1' }),
};

fs.mkdirSync(out, { recursive: true });
try {
  for (const [name, call] of Object.entries(calls)) {
    recorded.length = 0;
    const answer = await call();
    if (recorded.length !== 1) throw new Error(`${name}: ${recorded.length} requests`);
    const fixture = {
      recordedWith: `ably-js ${pkg.version}`,
      call: call.toString().replace(/^\(\) => /, ''),
      request: recorded[0],
      answer: answer && typeof answer === 'object' && 'versionSerial' in answer ? answer : undefined,
    };
    fs.writeFileSync(path.join(out, `${name}.json`), `${JSON.stringify(fixture, null, 2)}\n`);
    console.log(`${name}: ${recorded[0].method} ${recorded[0].path} ${JSON.stringify(recorded[0].body)}`);
  }
} finally {
  server.close();
}

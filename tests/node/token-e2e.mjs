// End-to-end check of POST /api/ably/token with the real Ably JavaScript client.
//
// Run by the Rust integration test `ably_js` with the token endpoint's URL. This script
// stands in for Ably's REST API with a local HTTP server that checks what Ably would:
// the TokenRequest mac (recomputed with the key secret), capability, clientId, timestamp
// and nonce - or, for format "jwt", the Ably JWT's signature and claims. Then the client
// authorizes through authUrl and makes an authenticated REST call with the token.
// Exits 0 only if the mock saw a valid credential and the client used it.
//
// Environment: AUTH_URL, BEARER, KEY_NAME, KEY_SECRET, EXPECT_CLIENT_ID,
// EXPECT_CAPABILITY, CHANNEL, FORMAT (tokenRequest | jwt), AUTH_PARAMS (JSON object).

import crypto from 'node:crypto';
import http from 'node:http';
import Ably from 'ably';

const env = (name) => {
  const value = process.env[name];
  if (value === undefined) fail(`missing environment variable ${name}`);
  return value;
};

function fail(reason) {
  console.error(`E2E FAIL ${reason}`);
  process.exit(1);
}

const AUTH_URL = env('AUTH_URL');
const BEARER = env('BEARER');
const KEY_NAME = env('KEY_NAME');
const KEY_SECRET = env('KEY_SECRET');
const EXPECT_CLIENT_ID = env('EXPECT_CLIENT_ID');
const EXPECT_CAPABILITY = env('EXPECT_CAPABILITY');
const CHANNEL = env('CHANNEL');
const FORMAT = env('FORMAT');
const AUTH_PARAMS = JSON.parse(process.env.AUTH_PARAMS || '{}');

const watchdog = setTimeout(() => fail('timed out'), 30_000);

const seen = { validCredential: false, authorizedRequests: 0, problems: [] };
let acceptedToken = null;

const b64url = (buf) => buf.toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');

/** What Ably checks on POST /keys/{keyName}/requestToken. */
function checkTokenRequest(tr) {
  const lines = [tr.keyName, tr.ttl ?? '', tr.capability ?? '', tr.clientId ?? '', tr.timestamp, tr.nonce];
  const expectedMac = crypto
    .createHmac('sha256', KEY_SECRET)
    .update(lines.map((l) => `${l}\n`).join(''))
    .digest('base64');
  const problems = [];
  if (tr.mac !== expectedMac) problems.push('mac does not verify');
  if (tr.keyName !== KEY_NAME) problems.push(`keyName ${tr.keyName}`);
  if (tr.capability !== EXPECT_CAPABILITY) problems.push(`capability ${tr.capability}`);
  if (tr.clientId !== EXPECT_CLIENT_ID) problems.push(`clientId ${tr.clientId}`);
  if (Math.abs(Date.now() - tr.timestamp) > 120_000) problems.push('timestamp outside 2 minutes');
  if (typeof tr.nonce !== 'string' || tr.nonce.length < 16) problems.push('nonce shorter than 16');
  if (!(tr.ttl > 0 && tr.ttl <= 86_400_000)) problems.push(`ttl ${tr.ttl}`);
  return problems;
}

/** What Ably checks on an Ably JWT. */
function checkJwt(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return ['not a three-part JWT'];
  const [h, p, s] = parts;
  const header = JSON.parse(Buffer.from(h, 'base64url').toString());
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
  const expectedSig = b64url(crypto.createHmac('sha256', KEY_SECRET).update(`${h}.${p}`).digest());
  const problems = [];
  if (s !== expectedSig) problems.push('signature does not verify');
  if (header.alg !== 'HS256' || header.typ !== 'JWT') problems.push(`header ${JSON.stringify(header)}`);
  if (header.kid !== KEY_NAME) problems.push(`kid ${header.kid}`);
  if (claims['x-ably-capability'] !== EXPECT_CAPABILITY) problems.push(`capability ${claims['x-ably-capability']}`);
  if (claims['x-ably-clientId'] !== EXPECT_CLIENT_ID) problems.push(`clientId ${claims['x-ably-clientId']}`);
  const now = Date.now() / 1000;
  if (!(claims.exp > now && Math.abs(claims.iat - now) < 120)) problems.push('iat/exp');
  return problems;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString()));
    req.on('error', reject);
  });
}

function reply(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const ablyError = (message) => ({ error: { code: 40101, statusCode: 401, message } });

const mock = http.createServer(async (req, res) => {
  const body = await readBody(req);
  const url = new URL(req.url, 'http://mock');
  if (req.method === 'POST' && url.pathname === `/keys/${KEY_NAME}/requestToken`) {
    const tr = JSON.parse(body);
    const problems = checkTokenRequest(tr);
    if (problems.length) {
      seen.problems.push(...problems);
      return reply(res, 401, ablyError(problems.join('; ')));
    }
    seen.validCredential = true;
    acceptedToken = `mock-token-${crypto.randomBytes(8).toString('hex')}`;
    const now = Date.now();
    return reply(res, 200, {
      token: acceptedToken,
      keyName: tr.keyName,
      issued: now,
      expires: now + tr.ttl,
      capability: tr.capability,
      clientId: tr.clientId,
    });
  }
  if (req.method === 'GET' && url.pathname === `/channels/${encodeURIComponent(CHANNEL)}/messages`) {
    const auth = req.headers.authorization || '';
    const token = auth.startsWith('Bearer ') ? Buffer.from(auth.slice(7), 'base64').toString() : '';
    if (FORMAT === 'jwt' && acceptedToken === null) {
      const problems = checkJwt(token);
      if (problems.length) {
        seen.problems.push(...problems);
        return reply(res, 401, ablyError(problems.join('; ')));
      }
      seen.validCredential = true;
      acceptedToken = token;
    }
    if (!token || token !== acceptedToken) {
      seen.problems.push('REST call without the issued token');
      return reply(res, 401, ablyError('unknown token'));
    }
    seen.authorizedRequests += 1;
    return reply(res, 200, []);
  }
  seen.problems.push(`unexpected ${req.method} ${url.pathname}`);
  return reply(res, 404, { error: { code: 40400, statusCode: 404, message: 'not found' } });
});

await new Promise((resolve) => mock.listen(0, '127.0.0.1', resolve));
const { port } = mock.address();

const client = new Ably.Rest({
  authUrl: AUTH_URL,
  authMethod: 'POST',
  authHeaders: { Authorization: `Bearer ${BEARER}` },
  authParams: AUTH_PARAMS,
  endpoint: '127.0.0.1',
  port,
  tls: false,
  useBinaryProtocol: false,
  logLevel: 0,
});

try {
  const details = await client.auth.authorize();
  if (FORMAT === 'tokenRequest' && details.token !== acceptedToken) fail('client holds another token');
  const page = await client.channels.get(CHANNEL).history();
  if (!Array.isArray(page.items)) fail('history did not answer a page');
} catch (err) {
  fail(`client error: ${err && err.message} (mock saw: ${seen.problems.join('; ') || 'nothing wrong'})`);
} finally {
  mock.close();
}

if (!seen.validCredential || seen.authorizedRequests !== 1 || seen.problems.length) {
  fail(`mock state ${JSON.stringify(seen)}`);
}
clearTimeout(watchdog);
console.log(`E2E OK format=${FORMAT} clientId=${EXPECT_CLIENT_ID} capability=${EXPECT_CAPABILITY}`);

// The official Upstash client (@upstash/redis), with its default settings, against the
// Upstash-compatible proxy: base64 response encoding, auto-pipelining, JSON
// (de)serialisation, pipelines, transactions, scripts, error replies and auth.
// Run from the Rust integration tests (tests/tests/api/upstash_js.rs).
//   UPSTASH_URL, UPSTASH_TOKEN  the proxy and its token
//   KEY_PREFIX                  a unique prefix for every key this run touches
import assert from "node:assert/strict";
import { Redis } from "@upstash/redis";

const url = required("UPSTASH_URL");
const token = required("UPSTASH_TOKEN");
const prefix = required("KEY_PREFIX");

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`missing environment variable ${name}`);
    process.exit(2);
  }
  return value;
}

const redis = new Redis({ url, token });
const used = [];
const key = (name) => {
  const k = `${prefix}:${name}`;
  used.push(k);
  return k;
};

const checks = {
  async "set/get of a short string"() {
    const k = key("v1");
    assert.equal(await redis.set(k, "v1"), "OK");
    assert.equal(await redis.get(k), "v1");
  },

  async "strings that look like base64 or like OK come back as stored"() {
    for (const value of ["dGVzdA==", "OK", "abcd"]) {
      const k = key(`look-alike:${value}`);
      await redis.set(k, value);
      assert.equal(await redis.get(k), value);
    }
  },

  async "unicode round trips"() {
    const k = key("unicode");
    const value = "héllo wörld — 你好, мир 🚀";
    await redis.set(k, value);
    assert.equal(await redis.get(k), value);
    assert.equal(await redis.strlen(k), Buffer.byteLength(value, "utf8"));
  },

  async "JSON values are serialised and parsed back"() {
    const k = key("json");
    const value = { id: "evt-1", tags: ["a", "ü"], count: 2, nested: { ok: true } };
    await redis.set(k, value);
    assert.deepEqual(await redis.get(k), value);
    const h = key("hash");
    await redis.hset(h, { name: "agent", score: 7 });
    assert.deepEqual(await redis.hgetall(h), { name: "agent", score: 7 });
  },

  async "missing keys are null"() {
    assert.equal(await redis.get(key("missing")), null);
  },

  async "pipeline"() {
    const k = key("pipe");
    const list = key("pipe:list");
    const results = await redis
      .pipeline()
      .set(k, "x")
      .get(k)
      .rpush(list, "a", "b")
      .lrange(list, 0, -1)
      .ping()
      .exec();
    assert.deepEqual(results, ["OK", "x", 2, ["a", "b"], "PONG"]);
  },

  async "multi (transaction)"() {
    const k = key("tx");
    const results = await redis.multi().set(k, "1").incr(k).expire(k, 60).get(k).exec();
    assert.deepEqual(results, ["OK", 2, 1, 2]);
  },

  async "eval with declared keys and nested results"() {
    const k = key("eval");
    const script =
      "redis.call('SET', KEYS[1], ARGV[1]); " +
      "return {KEYS[1], redis.call('GET', KEYS[1]), 7, {ARGV[2], redis.status_reply('OK')}}";
    const result = await redis.eval(script, [k], ["stored", "inner"]);
    assert.deepEqual(result, [k, "stored", 7, ["inner", "OK"]]);
  },

  async "scriptLoad + evalsha"() {
    const sha = await redis.scriptLoad("return {ARGV[1], #KEYS}");
    assert.match(sha, /^[0-9a-f]{40}$/);
    assert.deepEqual(await redis.evalsha(sha, [key("sha")], ["hello"]), ["hello", 1]);
    assert.deepEqual(await redis.scriptExists(sha), [1]);
  },

  async "an error reply rejects with the Redis message"() {
    const k = key("not-a-number");
    await redis.set(k, "abc");
    await assert.rejects(redis.incr(k), (err) => {
      assert.match(err.message, /ERR value is not an integer or out of range/);
      return true;
    });
    // The value is untouched, and the client still works afterwards.
    assert.equal(await redis.get(k), "abc");
  },

  async "a bad token is refused"() {
    const intruder = new Redis({ url, token: "not-the-token" });
    await assert.rejects(intruder.set(key("intruder"), "x"), (err) => {
      assert.match(err.message, /Unauthorized/);
      return true;
    });
    assert.equal(await redis.exists(key("intruder")), 0);
  },
};

let failed = 0;
for (const [name, check] of Object.entries(checks)) {
  try {
    await check();
    console.log(`ok   ${name}`);
  } catch (err) {
    failed += 1;
    console.log(`FAIL ${name}: ${err?.stack ?? err}`);
  }
}
try {
  if (used.length > 0) await redis.del(...used);
} catch (err) {
  console.log(`cleanup failed: ${err}`);
}
const total = Object.keys(checks).length;
if (failed > 0) {
  console.log(`UPSTASH-JS FAILED ${failed} of ${total} checks`);
  process.exit(1);
}
console.log(`UPSTASH-JS OK ${total} checks`);

// SPDX-License-Identifier: MIT
// runAll: many jobs behind one Promise (a wpool group), results in order,
// the first failure, AbortSignal, deadline, maxQueue, and a Worker ended
// with a batch in flight.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { Worker } = require('node:worker_threads');
const { Pool, binding, addonPath, occupy } = require('./helpers');

const pool = new Pool(binding);

test('results in input order, from an array or any iterable', async () => {
  const texts = Array.from({ length: 300 }, (_, i) => `item ${i}`);
  assert.deepEqual(await pool.runAll('upper', texts), texts.map((t) => t.toUpperCase()));
  assert.deepEqual(await pool.runAll('upper', new Set(['a', 'b'])), ['A', 'B']);
  assert.deepEqual(await pool.runAll('upper', []), []);
  const hex = (t) => crypto.createHash('sha256').update(t).digest('hex');
  assert.deepEqual(await pool.runAll('sha256', [{ text: 'a', rounds: 1 }, { text: 'b', rounds: 1 }]),
    [hex('a'), hex('b')]);
  assert.deepEqual(await pool.runAll('echo', [Buffer.from([1]), Buffer.from([2, 3])]),
    [Buffer.from([1]), Buffer.from([2, 3])]);
  assert.equal(pool.stats.inFlight, 0);
});

test('the first failure rejects; bad input throws before anything runs', async () => {
  await assert.rejects(pool.runAll('fail', [0, 22, 0]), { code: 'EINVAL', errno: -22 });
  const before = pool.stats.pool.submitted;
  await assert.rejects(pool.runAll('echo', ['ok', 42]), { name: 'TypeError' });
  await assert.rejects(pool.runAll('upper', 7), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.equal(pool.stats.pool.submitted, before, 'nothing was submitted');
});

test('AbortSignal withdraws the queued jobs and flags the running ones', async () => {
  const busy = await occupy(pool);
  const before = pool.stats.pool.cancelled;
  const ac = new AbortController();
  const all = pool.runAll('upper', ['a', 'b', 'c', 'd'], { signal: ac.signal });
  assert.equal(pool.queueSize, 4);
  ac.abort(new Error('gone'));
  await assert.rejects(all, (e) => e.name === 'AbortError' && e.code === 'ECANCELED' && e.cause.message === 'gone');
  assert.equal(pool.stats.pool.cancelled, before + 4);
  assert.equal(pool.queueSize, 0);
  await busy.release();
});

test('deadline and maxQueue apply to the whole batch', async () => {
  const busy = await occupy(pool);
  const late = assert.rejects(pool.runAll('upper', ['x', 'y'], { deadline: Date.now() + 5 }), { code: 'ETIMEDOUT' });
  await new Promise((r) => setTimeout(r, 20));
  await busy.release();
  await late;
  const small = new Pool(binding, { maxQueue: 3 });
  const busy2 = await occupy(pool);
  await assert.rejects(small.runAll('upper', ['1', '2', '3', '4']), { code: 'EAGAIN' });
  const ok = small.runAll('upper', ['1', '2', '3']);
  await busy2.release();
  assert.deepEqual(await ok, ['1', '2', '3']);
});

test('a Worker terminated with a batch in flight: cancelled, the pool goes on', async () => {
  const code = `
const { parentPort, workerData } = require('node:worker_threads');
const { Pool } = require(workerData.index);
const pool = new Pool(require(workerData.addon));
pool.runAll('spin', Array(30).fill(1e6)).catch(() => {});
parentPort.postMessage(pool.stats.inFlight);`;
  const before = pool.stats.pool.cancelled;
  const w = new Worker(code, { eval: true, workerData: { index: require.resolve('..'), addon: addonPath } });
  assert.equal(await new Promise((r) => w.once('message', r)), 1);
  await w.terminate();
  assert.ok(pool.stats.pool.cancelled >= before + 30 - pool.threads);
  assert.equal(pool.stats.pool.running, 0);
  assert.deepEqual(await pool.runAll('upper', ['z']), ['Z']);
});

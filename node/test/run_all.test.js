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

test('the first failure rejects at once and withdraws the rest; bad input throws before anything runs', async () => {
  await assert.rejects(pool.runAll('fail', [0, 22, 0]), { code: 'EINVAL', errno: -22 });
  // One failure first, then 40 one-second jobs: the Promise does not wait
  // for them; queued ones are withdrawn unrun, running ones stop (they poll).
  const cancelled = pool.stats.pool.cancelled;
  const t0 = Date.now();
  const slow = Array.from({ length: 40 }, () => ({ errno: 0, us: 1e6 }));
  await assert.rejects(pool.runAll('fail', [{ errno: 5, us: 0 }, ...slow]), { code: 'EIO' });
  assert.ok(Date.now() - t0 < 900, `rejected after ${Date.now() - t0} ms`);
  while (pool.stats.inFlight) await new Promise((r) => setTimeout(r, 5));
  assert.ok(Date.now() - t0 < 900, `the rest took ${Date.now() - t0} ms`);
  assert.ok(pool.stats.pool.cancelled >= cancelled + 40 - pool.threads);
  await assert.rejects(pool.runAll('spin', [1e6, 1e6, 'x']), { name: 'TypeError' }); // prepare refuses 'x'
  assert.deepEqual(await pool.runAll('upper', new Proxy(['p', 'q'], {})), ['P', 'Q']);
  await assert.rejects(pool.runAll('upper', { [Symbol.iterator]() { throw new Error('iter'); } }), /iter/);
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
  await assert.rejects(small.runAll('upper', ['1', '2', '3', '4']), { name: 'RangeError' });
  const busy2 = await occupy(pool);
  const one = pool.run('upper', '0');
  await assert.rejects(small.runAll('upper', ['1', '2', '3']), { code: 'EAGAIN' });
  assert.equal(await Promise.race([one, new Promise((r) => setTimeout(r, 50, 'queued'))]), 'queued');
  await busy2.release();
  await one;
  const busy3 = await occupy(pool);
  const ok = small.runAll('upper', ['1', '2', '3']);
  await busy3.release();
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

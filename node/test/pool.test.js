// SPDX-License-Identifier: MIT
// The JavaScript API over the kit: results, errors with codes, AbortSignal,
// deadlines, priority, maxQueue and 'drain', statistics.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { Pool, binding, occupy } = require('./helpers');

const pool = new Pool(binding);

test('results: string, Buffer and structured input and output', async () => {
  assert.equal(await pool.run('upper', 'héllo wörld'), 'HéLLO WöRLD');
  assert.deepEqual(await pool.run('echo', Buffer.from([1, 2, 3])), Buffer.from([1, 2, 3]));
  assert.deepEqual(await pool.run('echo', new Uint16Array([0x0201])), Buffer.from([1, 2]));
  assert.deepEqual(await pool.run('echo', new Uint8Array([9, 8]).buffer), Buffer.from([9, 8]));
  assert.deepEqual(await pool.run('echo', new DataView(new Uint8Array([7]).buffer)), Buffer.from([7]));
  assert.deepEqual(await pool.run('echo', undefined), Buffer.alloc(0));
  let md = crypto.createHash('sha256').update('wpool').digest();
  for (let i = 1; i < 3; i++) md = crypto.createHash('sha256').update(md).digest();
  assert.equal(await pool.run('sha256', { text: 'wpool', rounds: 3 }), md.toString('hex'));
  const many = await Promise.all(Array.from({ length: 500 }, (_, i) => pool.run('upper', `t${i}x`)));
  many.forEach((s, i) => assert.equal(s, `T${i}X`));
});

test('errors carry the errno name as code, and errno', async () => {
  await assert.rejects(pool.run('fail', 22), { code: 'EINVAL', errno: -22, message: /fail: Invalid argument/ });
  await assert.rejects(pool.run('fail', 11), { code: 'EAGAIN', errno: -11 });
  await assert.rejects(pool.run('nope', 1), { name: 'TypeError', code: 'ERR_WPOOL_UNKNOWN_TASK' });
  await assert.rejects(pool.run('echo', 42), { name: 'TypeError', message: /input must be/ });
  await assert.rejects(pool.run('sha256', { text: 1 }), { name: 'TypeError', message: /sha256 takes/ });
  await assert.rejects(pool.run('echo', 'x', { deadline: 'soon' }), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => new Pool({}), TypeError);
  assert.throws(() => new Pool(binding, { maxQueue: 0 }), RangeError);
});

test('AbortSignal: a queued task is withdrawn unrun, a running one sees the flag', async () => {
  const before = pool.stats.pool.cancelled;
  const busy = await occupy(pool);
  const ac = new AbortController();
  const queued = pool.run('upper', 'never', { signal: ac.signal });
  assert.equal(pool.queueSize, 1);
  ac.abort(new Error('user left'));
  await assert.rejects(queued, (e) => e.name === 'AbortError' && e.code === 'ECANCELED');
  assert.equal(pool.stats.pool.cancelled, before + 1, 'withdrawn from the queue, never ran');
  assert.equal(pool.queueSize, 0);
  const ended = await busy.release(); // running spins poll wpn_cancelled()
  for (const e of ended) assert.equal(e.name, 'AbortError');
  assert.equal(pool.stats.pool.cancelled, before + 1, 'the running ones ran');
  const pre = new AbortController();
  pre.abort();
  await assert.rejects(pool.run('upper', 'x', { signal: pre.signal }), { name: 'AbortError' });
});

test('AbortSignal: ids are shared by every Pool of a binding, so an abort finds its own task', async () => {
  const a = new Pool(binding);
  const b = new Pool(binding);
  const busy = await occupy(pool);
  const acA = new AbortController();
  const acB = new AbortController();
  const ra = a.run('upper', 'from a', { signal: acA.signal });
  const rb = b.run('upper', 'from b', { signal: acB.signal });
  acA.abort();
  await assert.rejects(ra, { name: 'AbortError' });
  await busy.release();
  assert.equal(await rb, 'FROM B');
});

test('bad options are refused before anything is submitted', async () => {
  const inFlight = pool.stats.inFlight;
  await assert.rejects(pool.run('upper', 'x', { signal: {} }), { code: 'ERR_INVALID_ARG_TYPE' });
  await assert.rejects(pool.run('upper', 'x', { deadline: NaN }), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.equal(pool.stats.inFlight, inFlight);
  assert.equal(await pool.run('upper', 'x', null), 'X');
});

test('deadline: a task that cannot start in time rejects with ETIMEDOUT unrun', async () => {
  const busy = await occupy(pool);
  const late = assert.rejects(pool.run('upper', 'late', { deadline: Date.now() + 5 }),
    { code: 'ETIMEDOUT', message: /deadline/ });
  const fine = pool.run('upper', 'fine', { deadline: Date.now() + 60000 });
  await new Promise((r) => setTimeout(r, 20)); // the deadline passes while every worker is busy
  await busy.release();
  await late; // checked when a worker reaches it
  assert.equal(await fine, 'FINE');
  await assert.rejects(pool.run('upper', 'x', { deadline: Date.now() - 1 }), { code: 'ETIMEDOUT' });
});

test('priority: a high-priority task overtakes the normal ones queued before it', async () => {
  const busy = await occupy(pool);
  const order = [];
  const runs = [];
  for (let i = 0; i < 6; i++) runs.push(pool.run('spin', 2000).then(() => order.push(`n${i}`)));
  runs.push(pool.run('spin', 2000, { priority: 'high' }).then(() => order.push('high')));
  await busy.release();
  await Promise.all(runs);
  assert.ok(order.indexOf('high') < pool.threads, `high finished at ${order.indexOf('high')}: ${order}`);
});

test("maxQueue: run() rejects with EAGAIN beyond it, and 'drain' follows", async () => {
  const small = new Pool(binding, { maxQueue: 2 });
  assert.equal(new Pool(binding, { maxQueue: 'auto' }).maxQueue, small.threads * small.threads);
  const busy = await occupy(small);
  const a = small.run('upper', 'a');
  const b = small.run('upper', 'b');
  assert.equal(small.needsDrain, true);
  await assert.rejects(small.run('upper', 'c'), { code: 'EAGAIN' });
  const drained = new Promise((resolve) => small.once('drain', resolve));
  await busy.release();
  assert.deepEqual(await Promise.all([a, b]), ['A', 'B']);
  await drained;
  assert.equal(small.needsDrain, false);
  assert.equal(await small.run('upper', 'd'), 'D');
});

test("'drain' reaches the refused Pool even when another Pool filled the queue", async () => {
  const limited = new Pool(binding, { maxQueue: 2 });
  const busy = await occupy(pool);
  const others = [pool.run('upper', 'a'), pool.run('upper', 'b'), pool.run('upper', 'c')];
  await assert.rejects(limited.run('upper', 'd'), { code: 'EAGAIN', errno: -11 });
  const drained = new Promise((resolve) => limited.once('drain', resolve));
  await busy.release();
  await Promise.all(others);
  await drained;
});

test('statistics: this thread\'s counts and the pool\'s histograms', async () => {
  const before = pool.completed;
  pool.resetStats();
  await Promise.all(Array.from({ length: 20 }, () => pool.run('spin', 200)));
  const s = pool.stats;
  assert.equal(s.completed, before + 20);
  assert.equal(s.queueSize, 0);
  assert.equal(s.inFlight, 0);
  assert.ok(s.threads >= 1);
  assert.ok(s.runTime.count === 20 && s.runTime.p50 >= 0.15, JSON.stringify(s.runTime));
  assert.equal(s.waitTime.count, 20);
  assert.ok(s.utilization > 0 && s.utilization <= 1);
  assert.equal(pool.waitTime.count, s.waitTime.count);
});

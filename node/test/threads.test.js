// SPDX-License-Identifier: MIT
// One pool per process whatever the number of worker_threads, each thread's
// Promises settled on its own loop, and clean ends: a Worker terminated with
// tasks in flight, process.exit() with tasks running, a natural exit that
// waits for what is in flight and does not wait while idle.
'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { spawnSync } = require('node:child_process');
const { Worker } = require('node:worker_threads');
const { Pool, binding, addonPath } = require('./helpers');

const pool = new Pool(binding);
const indexPath = require.resolve('..');

function wpoolThreads() { // the pool's workers are named wpool-<i>
  const name = (t) => { // a thread may end between the listing and the read
    try {
      return fs.readFileSync(`/proc/self/task/${t}/comm`, 'utf8');
    } catch (err) {
      if (err.code === 'ENOENT') return '';
      throw err;
    }
  };
  // (not the pool's ticker thread, wpool-ticker)
  return fs.readdirSync('/proc/self/task').filter((t) => /^wpool-\d+$/.test(name(t).trim())).length;
}

const workerCode = `
const { parentPort, threadId, workerData } = require('node:worker_threads');
const { Pool } = require(workerData.index);
const pool = new Pool(require(workerData.addon));
(async () => {
  const texts = Array.from({ length: 300 }, (_, i) => 'w' + threadId + '-' + i);
  const out = await Promise.all(texts.map((t) => pool.run('upper', t)));
  const ok = out.every((s, i) => s === texts[i].toUpperCase());
  // Left in flight for terminate() (submitted before the message: termination
  // may stop this thread's JavaScript right after it).
  if (workerData.linger === 'spin') for (let i = 0; i < 40; i++) pool.run('spin', 1e6).catch(() => {});
  if (workerData.linger === 'nopoll') // ~5 s each, never looking at wpn_cancelled()
    for (let i = 0; i < 4; i++) pool.run('sha256', { text: 'x', rounds: 2e7, poll: false }).catch(() => {});
  // Each Promise settled on this thread: a check after every await.
  parentPort.postMessage({ ok, threadId, completed: pool.completed, inFlight: pool.stats.inFlight });
})();`;

function startWorker(linger) {
  return new Worker(workerCode, { eval: true, workerData: { index: indexPath, addon: addonPath, linger } });
}

test('four worker_threads share the one pool, each with its own port', async () => {
  assert.equal(await pool.run('upper', 'main'), 'MAIN');
  const threads = wpoolThreads();
  assert.equal(threads, pool.threads);
  const workers = Array.from({ length: 4 }, () => startWorker());
  const answers = await Promise.all(workers.map((w) => new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  })));
  for (const a of answers) assert.deepEqual([a.ok, a.completed], [true, 300]);
  assert.equal(wpoolThreads(), threads, 'no pool per environment');
  await Promise.all(workers.map((w) => w.terminate()));
  assert.equal(await pool.run('upper', 'after'), 'AFTER');
});

test('a Worker terminated with tasks in flight: its queued tasks are cancelled, the pool goes on', async () => {
  const before = pool.stats.pool.cancelled;
  const w = startWorker('spin'); // leaves 40 one-second spins queued or running
  const m = await new Promise((resolve) => w.once('message', resolve));
  assert.equal(m.inFlight, 40);
  const t0 = Date.now();
  await w.terminate();
  assert.ok(Date.now() - t0 < 5000, 'teardown waited for the running spins only, which poll the flag');
  const after = pool.stats.pool;
  assert.ok(after.cancelled >= before + 40 - pool.threads, JSON.stringify({ before, after }));
  assert.equal(pool.stats.pool.running, 0);
  assert.equal(await pool.run('upper', 'still'), 'STILL');
});

test('configure(): the options of the process pool, once, before its first use', () => {
  const r = child(`const { configure } = require(${JSON.stringify(indexPath)});
const b = require(${JSON.stringify(addonPath)});
configure(b, { threads: 3 });
pool.run('upper', 'x').then(() => {
  try { configure(b, { threads: 1 }); } catch (e) { console.log(e.code); }
  try { configure(b, { threads: -1 }); } catch (e) { console.log(e.name); }
  try { b.configure({ threads: 'many' }); } catch (e) { console.log(e.name); }
  console.log(pool.threads);
});`);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), ['EBUSY', 'RangeError', 'TypeError', '3']);
});

function child(code) {
  const script = `const { Pool } = require(${JSON.stringify(indexPath)});
const pool = new Pool(require(${JSON.stringify(addonPath)}));\n${code}`;
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000 });
  return { ...r, ms: Date.now() - t0 };
}

test('process.exit() with tasks running and queued exits at once, with its code', () => {
  const r = child(`for (let i = 0; i < 50; i++) pool.run('spin', 2e6).catch(() => {});
setTimeout(() => process.exit(7), 50);`);
  assert.equal(r.status, 7, r.stderr);
  assert.equal(r.stderr, '');
  assert.ok(r.ms < 4000, `took ${r.ms} ms: the running spins must see the flag`);
});

test('process.exit() while work that never polls the flag runs: the code, within the grace', () => {
  // 4 x ~10 s of OpenSSL work that ignores wpn_cancelled(): exit waits 2 s,
  // then ends with the code before OpenSSL's own exit handlers run.
  const r = child(`for (let i = 0; i < 4; i++)
  pool.run('sha256', { text: 'x', rounds: 2e7, poll: false }).catch(() => {});
setTimeout(() => process.exit(5), 100);`);
  assert.equal(r.status, 5, `signal ${r.signal} ${r.stderr}`);
  assert.ok(r.ms < 6000, `took ${r.ms} ms`);
});

test('process.exit() with a Worker running work: not held up by the Worker', () => {
  const r = child(`const { Worker } = require('node:worker_threads');
const w = new Worker(${JSON.stringify(workerCode)}, { eval: true,
  workerData: { index: ${JSON.stringify(indexPath)}, addon: ${JSON.stringify(addonPath)}, linger: 'nopoll' } });
w.once('message', () => setTimeout(() => process.exit(3), 50));`);
  assert.equal(r.status, 3, `signal ${r.signal} ${r.stderr}`);
  assert.ok(r.ms < 6000, `took ${r.ms} ms`);
});

test('a rejection nobody handles is reported, with or without a signal', () => {
  for (const opts of ['', ', { signal: new AbortController().signal }']) {
    const r = child(`pool.run('fail', 22${opts});`);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /EINVAL/);
  }
});

test('a natural exit waits for tasks in flight, and not for an idle pool', () => {
  const r = child(`let n = 0;
for (let i = 0; i < 20; i++) pool.run('spin', 20000).then(() => n++);
process.on('exit', () => console.log('resolved', n));`);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'resolved 20');
  const idle = child(`pool.run('upper', 'x').then((s) => console.log(s));`);
  assert.equal(idle.status, 0, idle.stderr); // a referenced idle watch would hang until the timeout
  assert.equal(idle.stdout.trim(), 'X');
});

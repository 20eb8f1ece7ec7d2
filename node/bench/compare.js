/* SPDX-License-Identifier: MIT */
// Runs the same hash job three ways and prints throughput and event-loop
// delay side by side: inline on Node's main thread, on Piscina workers, and
// on the kit (the package's addon, task `sha256`: C workers, Promises settled
// on Node's loop; and the same jobs behind one Promise with runAll). Exits 1
// if any result differs from the inline one.
//
// usage: node bench/compare.js   (from node/, after npm ci; env JOBS, ROUNDS)
'use strict';
const path = require('node:path');
const os = require('node:os');
const { performance, monitorEventLoopDelay } = require('node:perf_hooks');
const hashRounds = require('./hash_worker.js');

const { Pool } = require('..');
const { Piscina } = require('piscina');

const pool = new Pool(require('../build/Release/wpool_tasks.node'));

const JOBS = Number(process.env.JOBS || 2000);

function calibrate() { // rounds for ~1 ms of inline hashing, after JIT warm-up
  for (let i = 0; i < 20; i++) hashRounds({ text: 'warm up', rounds: 200 });
  for (let r = 64; ; r *= 2) {
    const t0 = performance.now();
    hashRounds({ text: 'calibrate', rounds: r });
    const dt = performance.now() - t0;
    if (dt >= 50) return Math.max(1, Math.round(r / dt));
  }
}
const ROUNDS = Number(process.env.ROUNDS || calibrate());
const texts = Array.from({ length: JOBS }, (_, i) => `job ${i}: hello wpool`);

async function measure(name, runAll) {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const t0 = performance.now();
  const results = await runAll();
  const ms = performance.now() - t0;
  delay.disable();
  return {
    name, results, ms,
    rate: (JOBS / ms) * 1000,
    p50: delay.percentile(50) / 1e6,
    p99: delay.percentile(99) / 1e6,
    max: delay.max / 1e6,
  };
}

// Inline, as a naive server would: one job per loop turn, on the main thread.
async function inline() {
  const out = [];
  for (const text of texts) {
    await new Promise(setImmediate);
    out.push(hashRounds({ text, rounds: ROUNDS }));
  }
  return out;
}

async function runPiscina(threads) {
  const piscina = new Piscina({
    filename: path.join(__dirname, 'hash_worker.js'),
    minThreads: threads, maxThreads: threads,
  });
  try {
    await Promise.all(Array.from({ length: threads }, () => piscina.run({ text: 'warm', rounds: 1 })));
    return await measure('piscina', () =>
      Promise.all(texts.map((text) => piscina.run({ text, rounds: ROUNDS }))));
  } finally {
    await piscina.destroy();
  }
}

async function main() {
  const threads = pool.threads;
  const rows = [await measure('inline', inline)];
  rows.push(await runPiscina(threads));
  await pool.run('sha256', { text: 'warm', rounds: 1 });
  rows.push(await measure('wpool', () =>
    Promise.all(texts.map((text) => pool.run('sha256', { text, rounds: ROUNDS })))));
  // The same jobs as one group: one Promise, one crossing into JavaScript.
  rows.push(await measure('wpool-all', () =>
    pool.runAll('sha256', texts.map((text) => ({ text, rounds: ROUNDS })))));

  let wrong = 0;
  for (const row of rows.slice(1))
    for (let i = 0; i < JOBS; i++) wrong += row.results[i] !== rows[0].results[i];

  console.log(`${JOBS} jobs of SHA-256 x ${ROUNDS} rounds (~1 ms inline each), ` +
    `${threads} worker threads, node ${process.version}, ${os.availableParallelism()} CPUs`);
  console.log('method        jobs/s   vs inline   loop delay p50 ms   p99 ms    max ms');
  for (const r of rows) {
    console.log(`${r.name.padEnd(10)} ${r.rate.toFixed(0).padStart(9)} ` +
      `${(r.rate / rows[0].rate).toFixed(2).padStart(10)}x ` +
      `${r.p50.toFixed(2).padStart(19)} ${r.p99.toFixed(2).padStart(8)} ${r.max.toFixed(2).padStart(9)}`);
  }
  console.log('(inline and piscina hash with node:crypto, one createHash per round; the addon ' +
    'does the same rounds in C with OpenSSL, so its rate also reflects C vs JS per round)');
  console.log(wrong ? `FAIL: ${wrong} results differ from inline` : 'all results match inline');
  process.exitCode = wrong ? 1 : 0;
}

main().catch((e) => { console.error(e); process.exitCode = 1; });

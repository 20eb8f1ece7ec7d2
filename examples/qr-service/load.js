// SPDX-License-Identifier: MIT
'use strict';
// Load test of server.js, every mode in turn. This process is the client; each
// server runs as a child process on a free port. Two phases per mode:
//
//   fixed rate   --rate req/s (350) for --duration s, a new TCP connection per
//                request; latency counts from each request's intended send
//                time (t0 + i / rate), so a stalled server cannot hide behind
//                a client that sends late (no coordinated omission)
//   saturation   autocannon, --connections keep-alive connections (16)
//
// For each: req/s, latency p50/p95/p99 (ms), errors, and the server's event
// loop delay p50/p99/max from /__stats (reset as the phase starts). With
// --rounds N the modes run N times, in an order rotated each round, and each
// figure is the median of its N rounds (errors: the sum). One markdown table
// per phase. Exit status 1 if a mode failed to start or any request failed.
//
//   node load.js [--duration 10] [--rate 350] [--connections 16] [--rounds 3]
//                [--modes js,piscina,wpool,c-inline,thread] [--threads 2] [--short]
const { spawn } = require('node:child_process');
const http = require('node:http');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { parseArgs } = require('node:util');
const autocannon = require('autocannon');

const ALL_MODES = ['js', 'piscina', 'wpool', 'c-inline', 'thread'];

// A text per request, all a little different: nothing can be cached.
const pathFor = (i) => '/?text=' + encodeURIComponent('QR TEST ' + i);

function startServer(mode, threads) {
  // stdin is a pipe the server watches: if this process dies, the server
  // sees EOF and stops (no server outlives a killed test run).
  const child = spawn(process.execPath, [path.join(__dirname, 'server.js'), '--mode', mode,
    '--port', '0', '--threads', String(threads), '--exit-on-eof'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail('no "listening" within 20 s'), 20000);
    function fail(why) {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${mode}: ${why}\n${stderr.trim()}`));
    }
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]), stderr: () => stderr });
      }
    });
    child.on('exit', (code, signal) => fail(`exited with ${signal ?? code}`));
  });
}

// Stops a server and resolves with how it ended; a server that had already
// died (a crash is a signal, so exitCode stays null) resolves at once.
function stopServer(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      return resolve({ code: child.exitCode, signal: child.signalCode });
    }
    child.removeAllListeners('exit');
    const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.on('exit', (code, signal) => {
      clearTimeout(kill);
      resolve({ code, signal });
    });
    child.kill('SIGTERM');
  });
}

// server.js answers SIGTERM with exit(0): anything else is a failure.
function cleanEnd(mode, end, stderr) {
  if (end.code === 0 && end.signal === null) return null;
  return `${mode}: server ended with ${end.signal ?? `code ${end.code}`}\n${stderr.trim()}`;
}

function get(port, urlPath, agent) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.setTimeout(30000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function stats(port, reset) {
  const { body } = await get(port, '/__stats' + (reset ? '?reset=1' : ''));
  return JSON.parse(body).eld;
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

// Open loop: request i is due at t0 + i / rate, on its own connection.
async function fixedRate(port, rate, seconds) {
  const total = Math.round(rate * seconds);
  const latencies = [];
  let errors = 0;
  let last = 0;
  const pending = [];
  const t0 = performance.now() + 20;
  const due = (i) => t0 + (i * 1000) / rate;
  const send = (i) => get(port, pathFor(i), false).then(({ status, body }) => {
    const now = performance.now();
    last = Math.max(last, now);
    if (status === 200 && body.startsWith('{"result":"data:image/png;base64,')) {
      latencies.push(now - due(i));
    } else {
      errors++;
    }
  }, () => { errors++; });
  await new Promise((resolve) => {
    let i = 0;
    (function tick() {
      const now = performance.now();
      for (; i < total && due(i) <= now; i++) pending.push(send(i));
      if (i < total) setTimeout(tick, Math.max(0, due(i) - performance.now()));
      else resolve();
    })();
  });
  await Promise.all(pending);
  latencies.sort((a, b) => a - b);
  const elapsed = (Math.max(last, due(total - 1)) - t0) / 1000;
  return {
    rps: latencies.length / elapsed,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    errors,
  };
}

// Closed loop: autocannon's keep-alive connections, each sending its next
// request when the last one is answered. Latencies recorded per response (for
// p95, which autocannon's summary does not have).
async function saturation(port, connections, seconds) {
  const latencies = [];
  let n = 0;
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections,
    duration: seconds,
    requests: [{ setupRequest: (req) => ({ ...req, path: pathFor(n++) }) }],
    setupClient: (client) => client.on('response', (status, bytes, ms) => latencies.push(ms)),
  });
  latencies.sort((a, b) => a - b);
  return {
    rps: result.requests.total / seconds,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    errors: result.errors + result.non2xx, // autocannon's errors include its timeouts
  };
}

// The median of each figure over rounds (errors: their sum).
function medianOf(results) {
  const med = (xs) => {
    const v = [...xs].sort((a, b) => a - b);
    return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  };
  const pick = (get) => med(results.map(get));
  return {
    rps: pick((r) => r.rps), p50: pick((r) => r.p50), p95: pick((r) => r.p95), p99: pick((r) => r.p99),
    errors: results.reduce((n, r) => n + r.errors, 0),
    eld: { p50: pick((r) => r.eld.p50), p99: pick((r) => r.eld.p99), max: pick((r) => r.eld.max) },
  };
}

async function measure(port, phase) {
  await stats(port, true);
  const r = await phase();
  return { ...r, eld: await stats(port, false) };
}

function table(title, rows) {
  const f = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  const lines = [`### ${title}`, '',
    '| mode | req/s | p50 ms | p95 ms | p99 ms | errors | eld p50 ms | eld p99 ms | eld max ms |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|'];
  for (const [mode, r] of rows) {
    if (r.failed) {
      lines.push(`| ${mode} | failed: ${r.failed} | | | | | | | |`);
      continue;
    }
    lines.push(`| ${mode} | ${f(r.rps, 0)} | ${f(r.p50)} | ${f(r.p95)} | ${f(r.p99)} | ${r.errors} | ` +
      `${f(r.eld.p50, 2)} | ${f(r.eld.p99, 2)} | ${f(r.eld.max, 2)} |`);
  }
  return lines.join('\n');
}

async function main() {
  const { values: opt } = parseArgs({
    options: {
      duration: { type: 'string', default: '10' },
      rate: { type: 'string', default: '350' },
      connections: { type: 'string', default: '16' },
      modes: { type: 'string', default: ALL_MODES.join(',') },
      threads: { type: 'string', default: '2' },
      rounds: { type: 'string', default: '3' },
      short: { type: 'boolean', default: false },
    },
  });
  const seconds = opt.short ? 2 : Number(opt.duration);
  const rate = Number(opt.rate);
  const connections = Number(opt.connections);
  const modes = opt.modes.split(',').filter(Boolean);
  for (const m of modes) if (!ALL_MODES.includes(m)) throw new Error(`unknown mode ${m}`);

  const rounds = opt.short ? 1 : Number(opt.rounds);
  const runs = new Map(modes.map((m) => [m, { fixed: [], sat: [], failed: null }]));
  let failed = false;
  for (let round = 0; round < rounds; round++) {
    const order = modes.map((_, i) => modes[(i + round) % modes.length]);
    for (const mode of order) {
      const run = runs.get(mode);
      if (run.failed) continue;
      process.stderr.write(`round ${round + 1}/${rounds} ${mode}: `);
      let server;
      try {
        server = await startServer(mode, opt.threads);
      } catch (err) {
        process.stderr.write(`${err.message}\n`);
        run.failed = 'did not start';
        failed = true;
        process.exitCode = 1;
        continue;
      }
      try {
        process.stderr.write('warm-up, ');
        await autocannon({ url: `http://127.0.0.1:${server.port}${pathFor(0)}`, connections: 4,
          duration: opt.short ? 0.5 : 1 });
        process.stderr.write('fixed rate, ');
        run.fixed.push(await measure(server.port, () => fixedRate(server.port, rate, seconds)));
        process.stderr.write('saturation\n');
        run.sat.push(await measure(server.port, () => saturation(server.port, connections, seconds)));
      } catch (err) {
        process.stderr.write(`${err.message}\n`);
        run.failed = err.message;
        failed = true;
        process.exitCode = 1;
      } finally {
        const why = cleanEnd(mode, await stopServer(server.child), server.stderr());
        if (why) {
          process.stderr.write(`${why}\n`);
          run.failed = run.failed ?? 'the server crashed';
          failed = true;
          process.exitCode = 1;
        }
      }
    }
  }
  const fixed = [];
  const sat = [];
  for (const [mode, run] of runs) {
    if (run.failed) {
      fixed.push([mode, { failed: run.failed }]);
      sat.push([mode, { failed: run.failed }]);
      continue;
    }
    const a = medianOf(run.fixed);
    const b = medianOf(run.sat);
    if (a.errors || b.errors) failed = true;
    fixed.push([mode, a]);
    sat.push([mode, b]);
  }
  const of = rounds > 1 ? `, median of ${rounds} rounds` : '';
  console.log(table(`Fixed rate: ${rate} req/s, a new connection per request, ${seconds} s${of}`, fixed));
  console.log();
  console.log(table(`Saturation: autocannon, ${connections} keep-alive connections, ${seconds} s${of}`, sat));
  process.exitCode = failed ? 1 : 0;
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
module.exports = { startServer, stopServer, cleanEnd, get };

// SPDX-License-Identifier: MIT
'use strict';
// The QR service: GET /?text=... -> {"result":"data:image/png;base64,..."},
// the QR code drawn by one of five back ends (--mode):
//
//   js        qrcode.toDataURL on the main thread
//   piscina   qrcode in qr_worker.js on a Piscina pool of --threads threads
//   wpool     qr_addon's task function 'qr' on wpool (the wpool-napi kit)
//   c-inline  qr_addon.qrInline: the same C, synchronous, on the main thread
//   thread    qr_addon.qrThread: the same C on a new pthread per request
//
// GET /__stats -> {"eld":{p50,p99,max,mean}}: the event loop's delay in ms
// (beyond the 10 ms sampling timer); ?reset=1 clears it after reading.
//
//   node server.js --mode wpool --port 3000 [--threads 2] [--exit-on-eof]
const path = require('node:path');
const { monitorEventLoopDelay } = require('node:perf_hooks');
const { parseArgs } = require('node:util');
const express = require('express');

const DEFAULT_TEXT = 'QR TEST';
const ELD_RESOLUTION_MS = 10;

// Returns { encode(text) -> Promise<string>, close() } for a mode.
function backend(mode, threads) {
  switch (mode) {
    case 'js': {
      const QRCode = require('qrcode');
      return { encode: (text) => QRCode.toDataURL(text), close() {} };
    }
    case 'piscina': {
      const { Piscina } = require('piscina');
      const pool = new Piscina({
        filename: path.join(__dirname, 'qr_worker.js'),
        minThreads: threads,
        maxThreads: threads,
      });
      return { encode: (text) => pool.run(text), close: () => pool.destroy() };
    }
    case 'wpool': {
      // The pool's threads: one per core, the process-wide wpool pool of the
      // kit (--threads does not apply).
      const { Pool } = require('wpool-napi');
      const pool = new Pool(require('./build/Release/qr_addon.node'));
      return { encode: (text) => pool.run('qr', text), close() {} };
    }
    case 'c-inline': {
      const { qrInline } = require('./build/Release/qr_addon.node');
      return { encode: async (text) => qrInline(text), close() {} };
    }
    case 'thread': {
      const { qrThread } = require('./build/Release/qr_addon.node');
      return { encode: (text) => qrThread(text), close() {} };
    }
    default:
      throw new Error(`unknown --mode ${mode} (js, piscina, wpool, c-inline or thread)`);
  }
}

class BadRequest extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

// The text parameter, from req.url itself: Express's query parser (like
// URLSearchParams) silently keeps a malformed %-sequence as it is, and we
// want to refuse it. '+' means a space, as in a form; the first text= wins;
// missing or empty: 'QR TEST'.
function textOf(url) {
  const q = url.indexOf('?');
  if (q < 0) return DEFAULT_TEXT;
  for (const pair of url.slice(q + 1).split('&')) {
    const eq = pair.indexOf('=');
    const [rawKey, rawValue] = eq < 0 ? [pair, ''] : [pair.slice(0, eq), pair.slice(eq + 1)];
    let key;
    let value;
    try {
      key = decodeURIComponent(rawKey.replace(/\+/g, ' '));
      value = decodeURIComponent(rawValue.replace(/\+/g, ' '));
    } catch {
      throw new BadRequest(
        `malformed percent-encoding in the query string: ${JSON.stringify(pair.slice(0, 100))}` +
          ' (each % must start %XX, and the bytes must be UTF-8)',
        'ERR_BAD_QUERY');
    }
    if (key !== 'text') continue;
    if (value.includes('\0')) throw new BadRequest('text must not contain NUL', 'EINVAL');
    return value === '' ? DEFAULT_TEXT : value;
  }
  return DEFAULT_TEXT;
}

// qrcode throws a plain Error when no QR version holds the text; the C side
// rejects with code 'EMSGSIZE'.
function isTooBig(err) {
  return err.code === 'EMSGSIZE' || /too big to be stored in a QR Code/.test(err.message);
}

function main() {
  const { values: opt } = parseArgs({
    options: {
      mode: { type: 'string', default: 'js' },
      port: { type: 'string', default: '3000' },
      threads: { type: 'string', default: '2' },
      'exit-on-eof': { type: 'boolean', default: false },
    },
  });
  const threads = Number(opt.threads);
  if (!(Number.isInteger(threads) && threads > 0)) throw new Error('--threads: a positive integer');
  const qr = backend(opt.mode, threads);

  const eld = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });
  eld.enable();
  const ms = (ns) => Math.max(0, ns / 1e6 - ELD_RESOLUTION_MS);

  const app = express();
  app.set('etag', false); // hashing every response would only add main-thread work
  app.set('x-powered-by', false);

  app.get('/__stats', (req, res) => {
    res.json({
      mode: opt.mode,
      eld: {
        p50: ms(eld.percentile(50)),
        p99: ms(eld.percentile(99)),
        max: ms(eld.max),
        mean: ms(eld.mean),
        samples: eld.count,
      },
    });
    if (/[?&]reset=1(&|$)/.test(req.url)) eld.reset();
  });

  app.get('/', async (req, res) => {
    let text;
    try {
      text = textOf(req.url);
    } catch (err) {
      return res.status(400).json({ error: err.message, code: err.code });
    }
    try {
      res.json({ result: await qr.encode(text) });
    } catch (err) {
      if (isTooBig(err)) {
        res.status(400).json({
          error: `the text (${Buffer.byteLength(text)} bytes) does not fit in a QR code`,
          code: 'EMSGSIZE',
        });
      } else {
        res.status(500).json({ error: String(err.message), code: err.code ?? 'EINTERNAL' });
      }
    }
  });

  const server = app.listen(Number(opt.port), (err) => { // Express 5 passes a listen error here
    if (err) {
      console.error(err.message);
      process.exit(1);
    }
    console.log(`listening on ${server.address().port}`);
  });
  const stop = () => {
    server.close();
    server.closeAllConnections();
    Promise.resolve(qr.close()).finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (opt['exit-on-eof']) { // started by load.js or the tests: stop when they go
    process.stdin.on('end', stop);
    process.stdin.resume();
  }
}

if (require.main === module) main();
module.exports = { textOf };

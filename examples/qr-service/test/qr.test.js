// SPDX-License-Identifier: MIT
'use strict';
// node --test test/   (needs build/Release/qr_addon.node: npm run build)
const assert = require('node:assert/strict');
const { after, before, describe, test } = require('node:test');
const QRCode = require('qrcode');
const { execFileSync } = require('node:child_process');
const { startServer, stopServer, cleanEnd, get } = require('../load.js');
const { PNG } = require('pngjs');

// Decodes a QR data URL drawn with qrcode's defaults (4 px per module, a
// margin of 4 modules) back to its module matrix: one string of '0'/'1' per
// row, sampled at the centre of each module. Any PNG colour type or bit depth
// (qrcode writes 8-bit RGBA, qr_addon 1-bit grey): pngjs unpacks both to RGBA.
const SCALE = 4;
const MARGIN = 4;

function decode(dataUrl) {
  const prefix = 'data:image/png;base64,';
  if (!dataUrl.startsWith(prefix)) throw new Error('not a PNG data URL');
  const png = PNG.sync.read(Buffer.from(dataUrl.slice(prefix.length), 'base64'));
  const { width, height, data } = png;
  if (width !== height || width % SCALE) throw new Error(`odd image size ${width}x${height}`);
  const modules = width / SCALE - 2 * MARGIN;
  const dark = (x, y) => data[(y * width + x) * 4] < 128; // red channel
  const rows = [];
  for (let my = 0; my < modules; my++) {
    let row = '';
    for (let mx = 0; mx < modules; mx++) {
      const c = (m) => (m + MARGIN) * SCALE + SCALE / 2;
      row += dark(c(mx), c(my)) ? '1' : '0';
    }
    rows.push(row);
  }
  // The quiet zone must be light all round.
  for (let i = 0; i < width; i++) {
    for (const [x, y] of [[i, 0], [0, i], [i, width - 1], [width - 1, i]]) {
      if (dark(x, y)) throw new Error('dark pixel in the margin');
    }
  }
  return { width, height, modules, rows };
}

const MODES = ['js', 'piscina', 'wpool', 'c-inline', 'thread'];
const T = { timeout: 30000 };
const servers = {};

before(async () => {
  // allSettled: every server that started is in `servers`, so after() stops it.
  const started = await Promise.allSettled(MODES.map(async (m) => { servers[m] = await startServer(m, 2); }));
  for (const r of started) if (r.status === 'rejected') throw r.reason;
}, { timeout: 60000 });

// Each server must end as server.js ends on SIGTERM (exit 0): a crash at any
// time, shutdown included, fails the run.
after(async () => {
  const ends = await Promise.all(Object.entries(servers).map(async ([m, s]) =>
    cleanEnd(m, await stopServer(s.child), s.stderr())));
  assert.deepEqual(ends.filter(Boolean), []);
});

async function qr(mode, query) {
  const { status, body } = await get(servers[mode].port, '/' + query);
  return { status, json: JSON.parse(body) };
}
const q = (text) => '?text=' + encodeURIComponent(text);

// Near the capacity of version 40 at level M: 2331 bytes, 3391 alphanumeric
// characters, 5596 digits.
const TEXTS = [
  'QR TEST', 'a', 'hello world', 'The quick brown fox jumps over the lazy dog',
  '0123456789', '3141592653589793238462643383279502884197169399375105820974944',
  'HELLO WORLD 123 $%*+-./:', 'https://example.com/path/to/item?id=12345&lang=en#top',
  'mailto:someone@example.org?subject=Hi%20there', 'WIFI:T:WPA;S:MyNet;P:s3cr3t;;',
  'Grüße aus Köln', '日本語のテキスト', 'emoji 😀🎉🚀 and more 👍🏽', 'line1\nline2\ttab',
  '!"#&\'()<>?@[]^_`{|}~', 'MIXED case 123 and ÜNICODE ✓', 'QR TEST 42',
  // Short digit runs and ties, where libqrencode's own splitting differs:
  'hello123', 'https://example.com/item/4567', 'tel:+15551234567', '= :.- 00000c',
  'x'.repeat(2331), 'A'.repeat(3391), '9'.repeat(5596),
  'Lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(8),
];

describe('every mode', () => {
  for (const mode of MODES) {
    test(`${mode}: JSON with a PNG data URL of the right size`, T, async () => {
      const { status, json } = await qr(mode, q('hello world'));
      assert.equal(status, 200);
      assert.deepEqual(Object.keys(json), ['result']);
      assert.match(json.result, /^data:image\/png;base64,[A-Za-z0-9+/]+=*$/);
      const png = Buffer.from(json.result.slice(22), 'base64');
      assert.deepEqual([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
      const img = decode(json.result); // throws on a broken PNG
      assert.equal(img.width, (21 + 2 * 4) * 4); // version 1: 21 modules + margin, 4 px each
    });

    test(`${mode}: no text is 'QR TEST'`, T, async () => {
      const explicit = await qr(mode, q('QR TEST'));
      assert.equal(explicit.status, 200);
      for (const query of ['', '?', '?text=', '?other=1']) {
        const dflt = await qr(mode, query);
        assert.equal(dflt.status, 200, query);
        assert.equal(dflt.json.result, explicit.json.result, query);
      }
    });

    test(`${mode}: bad percent-encoding is a 400 JSON error`, T, async () => {
      for (const query of ['?text=%E0%A4%A', '?text=%', '?text=%zz', '?text=%FF', '?te%xt=1']) {
        const { status, json } = await qr(mode, query);
        assert.equal(status, 400, query);
        assert.equal(json.code, 'ERR_BAD_QUERY', query);
        assert.match(json.error, /malformed percent-encoding/);
      }
    });

    test(`${mode}: a text beyond QR capacity is a 400 JSON error, code EMSGSIZE`, T, async () => {
      for (const text of ['x'.repeat(2332), '9'.repeat(5597), 'ü'.repeat(1200)]) {
        const { status, json } = await qr(mode, q(text));
        assert.equal(status, 400);
        assert.equal(json.code, 'EMSGSIZE');
        assert.equal(typeof json.error, 'string');
      }
    });
  }
});

describe('the C image has the modules of qrcode', () => {
  for (const [i, text] of TEXTS.entries()) {
    test(`text ${i}: ${JSON.stringify(text.slice(0, 30))} (${text.length} chars)`, T, async () => {
      const js = await qr('js', q(text));
      const c = await qr('wpool', q(text));
      assert.equal(js.status, 200);
      assert.equal(c.status, 200);
      const a = decode(js.json.result);
      const b = decode(c.json.result);
      // The decoder itself reads qrcode's image right:
      const ref = QRCode.create(text);
      assert.equal(a.modules, ref.modules.size);
      assert.equal(a.rows.join(''), Array.from(ref.modules.data).join(''));
      assert.equal(b.width, a.width);
      assert.equal(b.height, a.height);
      assert.deepEqual(b.rows, a.rows, `mask: qrcode chose ${ref.maskPattern}`);
    });
  }

  test('c-inline and thread send the same bytes as wpool', T, async () => {
    for (const text of TEXTS.slice(0, 8)) {
      const w = await qr('wpool', q(text));
      for (const mode of ['c-inline', 'thread']) {
        assert.equal((await qr(mode, q(text))).json.result, w.json.result, `${mode} ${text}`);
      }
    }
  });
});

// qrThread's threads are detached: one may outlive the Worker that started
// it. Workers that end with threads in flight must not bring the process
// down (the addon stays loaded; the threadsafe function is closed safely).
test('qrThread: Workers end with threads in flight', { timeout: 60000 }, () => {
  const script = `
    const { Worker, isMainThread, parentPort } = require('node:worker_threads');
    const addon = ${JSON.stringify(require.resolve('../build/Release/qr_addon.node'))};
    if (isMainThread) {
      (async () => {
        for (let k = 0; k < 20; k++) {
          const w = new Worker(__filename);
          await new Promise((r) => w.once('message', r));
          await new Promise((r) => setTimeout(r, k % 4));
          await w.terminate();
        }
        const { qrThread } = require(addon);
        console.log((await Promise.all([1, 2, 3].map((i) => qrThread('after ' + i)))).length);
      })();
    } else {
      const { qrThread } = require(addon);
      // 40 texts of ~1,500 characters: threads still run as the Worker ends.
      for (let i = 0; i < 40; i++) qrThread(String(i).padEnd(1500, 'x')).catch(() => {});
      parentPort.postMessage('go');
    }`;
  const dir = require('node:os').tmpdir();
  const file = require('node:path').join(dir, `qr-thread-teardown-${process.pid}.js`);
  require('node:fs').writeFileSync(file, script);
  try {
    const out = execFileSync(process.execPath, [file],
      { encoding: 'utf8', timeout: 50000, killSignal: 'SIGKILL' });
    assert.equal(out.trim(), '3');
  } finally {
    require('node:fs').rmSync(file, { force: true });
  }
});

/* SPDX-License-Identifier: MIT */
// The same job in JavaScript: SHA-256 of the text, re-hashed `rounds` times.
// Used inline on the main thread and as a Piscina worker.
'use strict';
const crypto = require('node:crypto');

function hashRounds({ text, rounds }) {
  let h = crypto.createHash('sha256').update(text).digest();
  for (let i = 1; i < rounds; i++) h = crypto.createHash('sha256').update(h).digest();
  return h.toString('hex');
}

module.exports = hashRounds;

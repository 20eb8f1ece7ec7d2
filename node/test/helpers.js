// SPDX-License-Identifier: MIT
// Shared by the kit's tests: the package's addon, and a way to occupy every
// worker of the process pool until released.
'use strict';
const path = require('node:path');
const { Pool } = require('..');

const addonPath = path.join(__dirname, '..', 'build', 'Release', 'wpool_tasks.node');
const binding = require(addonPath);

// Starts one long `spin` per worker, each with its own AbortSignal, and
// waits until all of them run (the pool's running count), so that whatever
// is submitted next waits in the queue. release() aborts them and waits.
async function occupy(pool) {
  const controllers = [];
  const runs = [];
  for (let i = 0; i < pool.threads; i++) {
    const ac = new AbortController();
    controllers.push(ac);
    runs.push(pool.run('spin', 30e6, { signal: ac.signal }).catch((e) => e));
  }
  while (pool.stats.pool.running < pool.threads) await new Promise((r) => setImmediate(r));
  return {
    async release() {
      for (const ac of controllers) ac.abort();
      return Promise.all(runs);
    },
  };
}

module.exports = { Pool, binding, addonPath, occupy };

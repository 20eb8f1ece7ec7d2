// SPDX-License-Identifier: MIT
// A Piscina-like API over C task functions run on wpool: the JavaScript half
// of the kit (the C half: src/wpool_napi.h). The guide: docs/node.md.
//
//   const { Pool } = require('wpool-napi');
//   const pool = new Pool(require('./build/Release/my_addon.node'), { maxQueue: 'auto' });
//   const out = await pool.run('upper', 'abc', { signal, priority: 'high', deadline });
'use strict';

const { EventEmitter } = require('node:events');

function codeError(code, message, Ctor = Error) {
  const err = new Ctor(message);
  err.code = code;
  return err;
}

function abortError(signal) {
  const err = codeError('ECANCELED', 'pool.run: the task was aborted');
  err.name = 'AbortError';
  err.cause = signal.reason;
  return err;
}

class Pool extends EventEmitter {
  #binding;
  #names;
  #maxQueue;
  #lowWater;
  #refused = false;
  #nextId = 0;

  // binding: an addon whose module initialiser called wpn_init().
  // options.maxQueue: how many of this thread's tasks may wait for a worker
  //   (Infinity, the default; 'auto': threads * threads, as Piscina; or a
  //   positive integer). Beyond it run() rejects with code 'EAGAIN', and
  //   'drain' is emitted once the queue has fallen to half of it.
  constructor(binding, options = {}) {
    super();
    if (!binding || typeof binding.run !== 'function' || !Array.isArray(binding.functions)) {
      throw new TypeError('Pool: the binding must be an addon made with wpn_init()');
    }
    this.#binding = binding;
    this.#names = new Map(binding.functions.map((name, i) => [name, i]));
    let max = options.maxQueue ?? Infinity;
    if (max === 'auto') max = this.threads * this.threads;
    if (max !== Infinity && !(Number.isInteger(max) && max > 0)) {
      throw new RangeError("Pool: maxQueue must be a positive integer, 'auto' or Infinity");
    }
    this.#maxQueue = max;
    this.#lowWater = Math.floor(max / 2);
  }

  // Runs the C task function `name` on the process pool with `input`; the
  // Promise settles on this thread's loop. Options:
  //   signal    an AbortSignal: a queued task is withdrawn (rejects with an
  //             AbortError, code 'ECANCELED'); a running one sees
  //             wpn_cancelled() turn true and decides.
  //   priority  'high' (or a number > 0): the pool's high-priority lane.
  //   deadline  a time on Date.now()'s clock (ms) by which the task must
  //             start, or it rejects with code 'ETIMEDOUT' without running.
  run(name, input, options = {}) {
    const { signal, priority, deadline } = options;
    const index = this.#names.get(name);
    if (index === undefined) {
      return Promise.reject(
        codeError('ERR_WPOOL_UNKNOWN_TASK', `pool.run: no task function named ${JSON.stringify(name)}`, TypeError));
    }
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (deadline !== undefined && typeof deadline !== 'number') {
      return Promise.reject(codeError('ERR_INVALID_ARG_TYPE', 'pool.run: deadline must be a number (ms, Date.now() clock)', TypeError));
    }
    if (this.#binding.queueSize() >= this.#maxQueue) {
      this.#refused = true;
      return Promise.reject(codeError('EAGAIN', `pool.run: the queue is full (maxQueue ${this.#maxQueue})`));
    }
    const high = priority === 'high' || (typeof priority === 'number' && priority > 0) ? 1 : 0;
    const delay = deadline === undefined ? -1 : Math.max(0, deadline - Date.now());
    const id = signal ? ++this.#nextId : 0;
    let promise;
    try {
      promise = this.#binding.run(index, input, high, delay, id);
    } catch (err) {
      return Promise.reject(err);
    }
    if (signal) {
      const onAbort = () => this.#binding.abort(id);
      signal.addEventListener('abort', onAbort, { once: true });
      const off = () => signal.removeEventListener('abort', onAbort);
      promise.then(off, off);
    }
    if (this.#maxQueue !== Infinity) {
      const check = () => this.#checkDrain();
      promise.then(check, check);
    }
    return promise;
  }

  #checkDrain() {
    if (this.#refused && this.#binding.queueSize() <= this.#lowWater) {
      this.#refused = false;
      this.emit('drain');
    }
  }

  // This thread's tasks waiting for a worker (Piscina's queueSize).
  get queueSize() { return this.#binding.queueSize(); }
  // Whether run() would now be refused for maxQueue (Piscina's needsDrain).
  get needsDrain() { return this.#binding.queueSize() >= this.#maxQueue; }
  get maxQueue() { return this.#maxQueue; }
  // The statistics: this thread's completed and queueSize, and the process
  // pool's (shared by every thread) threads, utilization, and waitTime and
  // runTime histograms in ms ({ count, mean, p50, p90, p99, p999, max }).
  get stats() { return this.#binding.stats(); }
  // Starts the pool's waitTime and runTime histograms and utilization afresh
  // (for every thread: they are the process pool's).
  resetStats() { this.#binding.resetStats(); }
  get completed() { return this.#binding.stats().completed; }
  get threads() { return this.#binding.stats().threads; }
  get utilization() { return this.#binding.stats().utilization; }
  get waitTime() { return this.#binding.stats().waitTime; }
  get runTime() { return this.#binding.stats().runTime; }
}

// The process pool's options, settable once, before its first use (the
// first run() or statistics read of any thread, or a Pool made with
// maxQueue 'auto'): { threads, queueCapacity, pin, nice } as in
// wpool_create(3); threads 0 (default) is one per core this process may run
// on. Throws an Error with code 'EBUSY' once the pool exists.
function configure(binding, options) {
  for (const key of ['threads', 'queueCapacity']) {
    const v = options?.[key];
    if (v !== undefined && !(Number.isInteger(v) && v >= 0)) {
      throw new RangeError(`configure: ${key} must be a non-negative integer`);
    }
  }
  const opts = { ...options };
  if (typeof opts.pin === 'boolean') opts.pin = opts.pin ? 1 : 0;
  binding.configure(opts);
}

module.exports = { Pool, configure };

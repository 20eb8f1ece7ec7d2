// SPDX-License-Identifier: MIT
// A Piscina-like API over C task functions run on wpool: the JavaScript half
// of the kit (the C half: src/wpool_napi.h). The guide: docs/node.md.
//
//   const { Pool } = require('wpool-napi');
//   const pool = new Pool(require('./build/Release/my_addon.node'), { maxQueue: 'auto' });
//   const out = await pool.run('upper', 'abc', { signal, priority: 'high', deadline });
'use strict';

const { EventEmitter } = require('node:events');
const { constants } = require('node:os');
const { isMainThread } = require('node:worker_threads');
const { types } = require('node:util');

function codeError(code, message, Ctor = Error) {
  const err = new Ctor(message);
  err.code = code;
  if (constants.errno[code]) err.errno = -constants.errno[code];
  return err;
}

function abortError(signal, method) {
  const err = codeError('ECANCELED', `pool.${method}: the task was aborted`);
  err.name = 'AbortError';
  err.cause = signal.reason;
  return err;
}

// What the Pools of one binding (one addon, on this thread) share: the ids
// that abort() names, and the Pools waiting to emit 'drain' (the queue they
// watch is this thread's, whichever Pool filled it); once any of them has a
// maxQueue, every task's settling checks for 'drain'.
const shared = new WeakMap();
function stateOf(binding) {
  let s = shared.get(binding);
  if (!s) {
    s = { nextId: 0, refused: new Set(), limited: false };
    shared.set(binding, s);
    // process.exit() skips the main thread's teardown: tell the kit at once,
    // so running work sees wpn_cancelled() before Node stops the Workers, and
    // the kit knows the code to end with if work does not stop (docs/node.md).
    if (isMainThread) process.once('exit', (code) => binding.exiting(code ?? process.exitCode ?? 0));
  }
  return s;
}

class Pool extends EventEmitter {
  #binding;
  #state;
  #names;
  #maxQueue;
  #lowWater;

  // binding: an addon whose module initialiser called wpn_init().
  // options.maxQueue: how many of this thread's tasks may wait for a worker
  //   (Infinity, the default; 'auto': threads * threads, as Piscina; or a
  //   positive integer). Beyond it run() rejects with code 'EAGAIN', and
  //   'drain' is emitted once the queue has fallen to half of it (checked as
  //   this thread's tasks settle).
  constructor(binding, options = {}) {
    super();
    if (!binding || typeof binding.run !== 'function' || !Array.isArray(binding.functions)) {
      throw new TypeError('Pool: the binding must be an addon made with wpn_init()');
    }
    this.#binding = binding;
    this.#state = stateOf(binding);
    this.#names = new Map(binding.functions.map((name, i) => [name, i]));
    let max = options?.maxQueue ?? Infinity;
    if (max === 'auto') max = this.threads * this.threads;
    if (max !== Infinity && !(Number.isInteger(max) && max > 0)) {
      throw new RangeError("Pool: maxQueue must be a positive integer, 'auto' or Infinity");
    }
    this.#maxQueue = max;
    this.#lowWater = Math.floor(max / 2);
    if (max !== Infinity) this.#state.limited = true;
  }

  // Runs the C task function `name` on the process pool with `input`; the
  // Promise settles on this thread's loop. Options:
  //   signal    an AbortSignal: a queued task is withdrawn (rejects with an
  //             AbortError, code 'ECANCELED'); a running one sees
  //             wpn_cancelled() turn true and decides.
  //   priority  'high' (or a number > 0): the pool's high-priority lane.
  //   deadline  a time on Date.now()'s clock (ms) by which the task must
  //             start, or it rejects with code 'ETIMEDOUT' without running.
  run(name, input, options) {
    return this.#submit('run', name, input, 1, options);
  }

  // Runs `name` once for every element of `inputs` (an array or iterable)
  // and resolves with the array of their results, in order: Promise.all done
  // in C (the jobs form one wpool group; their results reach JavaScript in
  // one callback instead of one per job). The first job to fail rejects it at
  // once and withdraws the others (queued ones never run, running ones see
  // wpn_cancelled()). The options apply to every job; a signal cancels them
  // all. The jobs count against maxQueue together: all are accepted, or the
  // call rejects with 'EAGAIN' (a batch larger than maxQueue itself rejects
  // with a RangeError: it could never be accepted).
  runAll(name, inputs, options) {
    if (typeof inputs?.[Symbol.iterator] !== 'function' || typeof inputs === 'string') {
      return Promise.reject(codeError('ERR_INVALID_ARG_TYPE', 'pool.runAll: inputs must be an array or iterable', TypeError));
    }
    return this.#submit('runAll', name, inputs, -1, options);
  }

  #submit(method, name, input, count, options) {
    const { signal, priority, deadline } = options ?? {};
    const index = this.#names.get(name);
    if (index === undefined) {
      return Promise.reject(codeError('ERR_WPOOL_UNKNOWN_TASK',
        `pool.${method}: no task function named ${JSON.stringify(name)}`, TypeError));
    }
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      return Promise.reject(codeError('ERR_INVALID_ARG_TYPE', `pool.${method}: signal must be an AbortSignal`, TypeError));
    }
    if (deadline !== undefined && !Number.isFinite(deadline)) {
      return Promise.reject(codeError('ERR_INVALID_ARG_TYPE',
        `pool.${method}: deadline must be a finite number (ms, Date.now() clock)`, TypeError));
    }
    if (signal?.aborted) return Promise.reject(abortError(signal, method));
    if (count < 0) { // runAll: the inputs as a plain array, now that the options are known good
      try {
        input = Array.isArray(input) && !types.isProxy(input) ? input : Array.from(input);
      } catch (err) {
        return Promise.reject(err);
      }
      count = input.length;
      if (count > this.#maxQueue) {
        return Promise.reject(codeError('ERR_OUT_OF_RANGE',
          `pool.runAll: ${count} jobs can never fit maxQueue ${this.#maxQueue}`, RangeError));
      }
    }
    if (this.#binding.queueSize() + count > this.#maxQueue) {
      this.#state.refused.add(this);
      return Promise.reject(codeError('EAGAIN', `pool.${method}: the queue is full (maxQueue ${this.#maxQueue})`));
    }
    const high = priority === 'high' || (typeof priority === 'number' && priority > 0) ? 1 : 0;
    const delay = deadline === undefined ? -1 : Math.max(0, deadline - Date.now());
    const id = signal ? ++this.#state.nextId : 0;
    let promise;
    try {
      promise = this.#binding[method](index, input, high, delay, id);
    } catch (err) {
      return Promise.reject(err);
    }
    if (signal) {
      const onAbort = () => this.#binding.abort(id);
      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) onAbort(); // aborted by the input's own conversion
      promise = promise.then((value) => {
        signal.removeEventListener('abort', onAbort);
        return value;
      }, (err) => {
        signal.removeEventListener('abort', onAbort);
        if (err?.name === 'AbortError') err.cause ??= signal.reason;
        throw err;
      });
    }
    // Chained, not attached: the caller's promise still reports an unhandled
    // rejection.
    if (this.#state.limited) promise = promise.finally(() => this.#checkDrain());
    return promise;
  }

  #checkDrain() {
    for (const pool of this.#state.refused) {
      if (this.#binding.queueSize() <= pool.#lowWater) {
        this.#state.refused.delete(pool);
        pool.emit('drain');
      }
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

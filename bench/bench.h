/* SPDX-License-Identifier: MIT */
/*
 * wpool benchmark suite: what every peer (wpool, libuv, GLib, the plain pool,
 * plain threads) and every workload share.
 *
 * One process runs one workload on one peer and prints one JSON object on
 * stdout; bench/run.sh runs them interleaved and summarises.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <wpool.h>

#ifdef BENCH_HAVE_UV
#include <uv.h>
#endif

#include "plain_pool.h"

/* What a task does on the worker. */
enum bench_work {
    WORK_NOOP = 0,
    WORK_SPIN,    /* bench_spin(spin_iters): ~5 us of pure CPU */
    WORK_PAYLOAD, /* read the producer's malloc'd payload, then free it */
    WORK_GATE,    /* block until bench_gate_open() */
};

/* One task, whatever the peer. The peer's own record comes first. */
struct btask {
    union {
        struct wpool_task wp;
#ifdef BENCH_HAVE_UV
        uv_work_t uv;
#endif
        struct plain_task pl;
    } rec;
    struct btask *next; /* free lists and hand-over stacks */
    void *payload;
    uint32_t payload_len;
    uint32_t work;  /* enum bench_work */
    uint32_t ran;   /* set by the worker, checked and cleared by the completion */
    uint32_t owner; /* producer index (W4) */
    uint64_t t0;    /* submit time, ns (W3) */
};

/* A pool under test. Every function but submit_mt runs on the owner thread
 * (the one that called create). */
struct peer {
    const char *name;
    /* How completions reach the owner, and how foreign threads submit. */
    const char *note;
    /* Size of the per-task record the peer needs from the caller. */
    size_t record_size;
    int (*create)(unsigned int threads);
    /* Prepares a record once, before its first submit (NULL: nothing to do). */
    void (*prepare)(struct btask *t);
    /* 0, or -EAGAIN when the peer's queue is full. */
    int (*submit)(struct btask *t);
    /* From any thread; NULL when the peer has no thread-safe submit. */
    int (*submit_mt)(struct btask *t);
    /* Submits up to n; returns how many were accepted (> 0) or -EAGAIN.
     * NULL when the peer has no batch submit. */
    int (*submit_batch)(struct btask **t, unsigned int n);
    /* Waits up to timeout_ms (-1: forever, 0: poll) for completions and runs
     * them (each through bench_complete); returns how many ran. */
    int (*poll)(int timeout_ms);
    void (*destroy)(void);
};

extern const struct peer peer_wpool;
extern const struct peer peer_wpool_pin;
extern const struct peer peer_wpool_rr;
extern const struct peer peer_wpool_port;
extern const struct peer peer_wpool_notiming;
extern const struct peer peer_wpool_at_once;
extern const struct peer peer_plain;
#ifdef BENCH_HAVE_UV
extern const struct peer peer_uv;
#endif
#ifdef BENCH_HAVE_GLIB
extern const struct peer peer_glib;
#endif

/* Runs on a worker: does t->work and marks the task as run. */
void bench_run(struct btask *t);
/* Runs on the owner, called by the peer for each completion: checks the
 * thread and that the work ran exactly once, then calls the workload's hook. */
void bench_complete(struct btask *t);

/* Current workload's hook for each completion (owner thread). */
extern void (*bench_on_done)(struct btask *t);
extern uint64_t bench_completed;
extern uint64_t bench_spin_iters;

uint64_t bench_now_ns(void);
uint64_t bench_spin(uint64_t iters);
void bench_gate_open(void);
void bench_gate_close(void);
_Noreturn void bench_die(const char *what, int err);

/* Per-thread system call counters (perf tracepoints). */
struct sysc {
    int nfds;
    int fds[3 * 64];
    bool ok;
    char why[96];
};
/* Opens disabled counters on every thread of this process; then start/stop. */
void sysc_open(struct sysc *s);
void sysc_start(struct sysc *s);
/* Stops and reads: futex calls (any op), futex wakes, write calls. */
void sysc_stop(struct sysc *s, uint64_t *futex, uint64_t *wakes, uint64_t *writes);

#endif

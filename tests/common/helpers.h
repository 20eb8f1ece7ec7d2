/* SPDX-License-Identifier: MIT */
/* Small helpers shared by the test programs. Header-only, test code only. */
#ifndef WP_TEST_HELPERS_H
#define WP_TEST_HELPERS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* A latch that blocks until opened: used to hold a worker inside a task
 * deterministically (no sleeps). */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
};

static inline void gate_init(struct gate *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->open = false;
}

static inline void gate_open(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static inline void gate_wait(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static inline void gate_fini(struct gate *g)
{
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
}

/* xorshift64*: a fast per-thread random stream for the stress tests. */
static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * UINT64_C(2685821657736338717);
}

/* The number a file (in /proc or /sys) starts with, or -1 if it cannot be
 * read or does not start with one. */
static inline long file_long(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = -1;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

/* The system call a thread of this process is in, from /proc (-1: running,
 * unknown, or gone). */
static inline long thread_syscall(pid_t tid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
    return file_long(path);
}

#endif

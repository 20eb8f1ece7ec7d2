/* SPDX-License-Identifier: MIT */
/*
 * stress suite: the completion port's wakeup protocol alone. Producers post
 * bursts of completions with random gaps (and sometimes yield right after
 * posting, to be preempted between winning ARMED and writing the eventfd);
 * the owner sleeps in poll() on the port's fd and dispatches. Every post must
 * be dispatched exactly once, and the owner must never sleep while
 * completions wait: a poll that sees nothing for 10 s fails the test. Run on
 * 2 cores and under `taskset -c 0`. Also with producers that hold their
 * signal over several posts, as workers do with the coalesce_us option.
 * White-box: links the library's internals.
 */
#include "../common/helpers.h"
#include "port.h"
#include "task.h"

#include <check.h>
#include "../common/fastcheck.h"
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#define PRODUCERS 4
#define POSTS     100000

static long g_seen;
static unsigned char *g_count; /* per task, owner thread only */
static struct wpool_task *g_tasks;

static int never_runs(struct wpool_task *t) /* posted directly: no work runs */
{
    return 0;
}

static void count_done(struct wpool_task *t, int status)
{
    long id = t - g_tasks;
    REQUIRE(g_count[id] == 0, "task %ld delivered twice", id);
    REQUIRE(status == (int)(id & 0xffff), "task %ld: status %d", id, status);
    g_count[id]++;
    g_seen++;
}

static atomic_int g_finished; /* producers done posting and signalling */

struct producer {
    struct wpool_port *port;
    long first;
    uint64_t rng;
    bool hold;    /* coalescing: push, and signal only now and then */
    bool guarded; /* post as a worker does, announced in its own guard */
    struct wp_post_guard guard;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    unsigned held = 0;
    for (long i = 0; i < POSTS; i++) {
        struct wpool_task *t = &g_tasks[p->first + i];
        wp_task_finish(t, (int)((p->first + i) & 0xffff));
        uint64_t x = rng_next(&p->rng);
        if (p->hold) {
            /* As a coalescing worker: hold the signal over up to 64 posts
             * (its window), release it now and then early (no task found). */
            if (!wp_port_push(p->port, t))
                held = 0; /* armed: the owner's pass covers what we held */
            else if (++held >= 64 || (x >> 32) % 16 == 0) {
                wp_port_signal(p->port);
                held = 0;
            }
        } else {
            wp_port_post(p->port, t, p->guarded ? &p->guard : NULL);
        }
        if ((x & 63) == 0)
            sched_yield(); /* a gap: the owner catches up and goes idle */
        else
            for (unsigned spin = (unsigned)(x >> 58); spin; spin--)
                __asm__ __volatile__("" ::: "memory");
    }
    if (held) /* the last release: the worker finds no task */
        wp_port_signal(p->port);
    atomic_fetch_add(&g_finished, 1); /* seq_cst: after its last signal */
    return NULL;
}

/* _i 0..2: every post signals (wp_port_post; 0..1 counted in `posting` as a
 * canceller's, 2 announced in a guard as a worker's); 3..4: producers hold
 * signals as coalescing workers do (wp_port_push, then wp_port_signal). */
START_TEST(test_port_no_lost_wakeup)
{
    struct wpool_port *port;
    ck_assert_int_eq(wp_port_new(NULL, false, &port), 0);
    long total = (long)PRODUCERS * POSTS;
    g_tasks = calloc((size_t)total, sizeof(*g_tasks));
    g_count = calloc((size_t)total, 1);
    g_seen = 0;
    atomic_store(&g_finished, 0);
    for (long i = 0; i < total; i++)
        wpool_task_init(&g_tasks[i], never_runs, count_done);
    pthread_t th[PRODUCERS];
    struct producer p[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        p[i] = (struct producer){.port = port,
                                 .first = (long)i * POSTS,
                                 .rng = 0xabcdefull * (uint64_t)(i + 1 + _i),
                                 .hold = _i >= 3,
                                 .guarded = _i == 2};
        pthread_create(&th[i], NULL, produce, &p[i]);
    }
    long wakeups = 0;
    while (g_seen < total) {
        struct pollfd pfd = {.fd = port->efd, .events = POLLIN};
        int rc = poll(&pfd, 1, 1000);
        REQUIRE(rc >= 0, "poll: %d", rc);
        if (rc == 0) {
            /* Quiet for a while: slow producers, or a lost wakeup. It is the
             * latter exactly when every producer is done (nothing will
             * signal any more) and completions are posted while the fd
             * stays quiet; then this owner would sleep for ever. */
            if (atomic_load(&g_finished) == PRODUCERS) {
                pfd.revents = 0;
                rc = poll(&pfd, 1, 0);
                REQUIRE(rc == 1, "%s: %ld of %ld delivered, fd quiet, every producer done",
                        wp_port_has_work(port) ? "lost wakeup (completions posted)"
                                               : "lost completions",
                        g_seen, total);
            }
            if (rc == 0)
                continue;
        }
        wakeups++;
        wp_port_run(port, UINT32_MAX);
    }
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(g_seen, total);
    /* After the last pass with every producer gone (joined: none is still
     * posting), nothing is left behind. */
    for (int i = 0; i < PRODUCERS; i++)
        ck_assert_ptr_null(atomic_load(&p[i].guard.port));
    wp_port_run(port, UINT32_MAX);
    struct pollfd pfd = {.fd = port->efd, .events = POLLIN};
    if (poll(&pfd, 1, 0) == 1) { /* at most one late write, consumed by one pass */
        wp_port_run(port, UINT32_MAX);
        ck_assert_int_eq(poll(&pfd, 1, 0), 0);
    }
    ck_assert_int_eq(g_seen, total);
    printf("port%s: %ld completions from %d producers in %ld owner wakeups\n",
           _i >= 3 ? " (held signals)" : "", total, PRODUCERS, wakeups);
    wp_port_free(port);
    free(g_tasks);
    free(g_count);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stress-port");
    TCase *tc = tcase_create("port");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_port_no_lost_wakeup, 0, 5);
    suite_add_tcase(s, tc);
    return wp_run_suite(s);
}

/* SPDX-License-Identifier: MIT */
/* api suite: regressions, black-box (only the public header).
 *
 * - Fork: in a child, cancel calls on an inherited task, pool or token return
 *   -EOWNERDEAD every time and change nothing (wpool_cancel used to swap the
 *   child's copy of the queue cell out before it looked at the generation:
 *   -EOWNERDEAD once, then -EBUSY).
 * - Statistics: utilization stays within [0, 1] across wpool_stats_reset (a
 *   task that started before the reset used to add its whole run to the new
 *   period; a reader could pair the new period's start with the old epoch).
 * - wpool_task_init on a zero-filled record, on an idle record that completed
 *   (data kept, attributes reset), and on one in flight (-EBUSY).
 */
#include "../common/helpers.h"
#include <wpool.h>

#include <check.h>
#include "../common/fastcheck.h"
#include "../common/jobs.h"
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The job ran once and completed once with its id. */
static void check_once(const struct job *j)
{
    ck_assert_int_eq(atomic_load(&j->ran), 1);
    ck_assert_int_eq(j->done_calls, 1);
    ck_assert_int_eq(j->status, j->id);
}

/* ---- fork: cancel calls in the child ------------------------------------------ */

/* What the child reports, in order, through a pipe. */
enum {
    FK_CANCEL_1,
    FK_CANCEL_2,
    FK_CANCEL_TOKTASK_1,
    FK_CANCEL_TOKTASK_2,
    FK_CANCEL_ALL_1,
    FK_CANCEL_ALL_2,
    FK_TOKEN_CANCEL_1,
    FK_TOKEN_CANCEL_2,
    FK_CANCEL_3,
    FK_CANCEL_TOKTASK_3,
    FK_N
};

static const char *const fk_names[FK_N] = {
    "wpool_cancel(queued) 1st",      "wpool_cancel(queued) 2nd", "wpool_cancel(token task) 1st",
    "wpool_cancel(token task) 2nd",  "wpool_cancel_all 1st",     "wpool_cancel_all 2nd",
    "wpool_token_cancel 1st",        "wpool_token_cancel 2nd",   "wpool_cancel(queued) last",
    "wpool_cancel(token task) last",
};

/* A task queued behind a held worker, and one carrying a token, at the fork.
 * In the child every cancel call on them, their pool or their token returns
 * -EOWNERDEAD, however often it is made, and changes nothing; the records
 * stay in flight (wpool_task_init: -EBUSY). The parent then finishes
 * normally: each task runs and completes exactly once. */
START_TEST(test_fork_child_cancel_changes_nothing)
{
    wpool_t *pool = make_pool(1, policy(_i), 16);
    wpool_token_t *tok;
    ck_assert_int_eq(wpool_token_create(&tok), 0);
    struct gate g;
    atomic_int started = 0;
    gate_init(&g);
    struct job blocker, queued, tokjob;
    hold_worker(pool, &blocker, 1000, &g, &started);
    job_init(&queued, 5);
    ck_assert_int_eq(wpool_submit(pool, &queued.task), 0);
    job_init(&tokjob, 6);
    ck_assert_int_eq(wpool_task_set_token(&tokjob.task, tok), 0);
    ck_assert_int_eq(wpool_submit(pool, &tokjob.task), 0);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int rc[FK_N];
        rc[FK_CANCEL_1] = wpool_cancel(&queued.task);
        rc[FK_CANCEL_2] = wpool_cancel(&queued.task);
        rc[FK_CANCEL_TOKTASK_1] = wpool_cancel(&tokjob.task);
        rc[FK_CANCEL_TOKTASK_2] = wpool_cancel(&tokjob.task);
        rc[FK_CANCEL_ALL_1] = wpool_cancel_all(pool);
        rc[FK_CANCEL_ALL_2] = wpool_cancel_all(pool);
        rc[FK_TOKEN_CANCEL_1] = wpool_token_cancel(tok);
        rc[FK_TOKEN_CANCEL_2] = wpool_token_cancel(tok);
        rc[FK_CANCEL_3] = wpool_cancel(&queued.task);
        rc[FK_CANCEL_TOKTASK_3] = wpool_cancel(&tokjob.task);
        /* The copies are still in flight. */
        int bad = wpool_task_init(&queued.task, job_work, job_done) != -EBUSY;
        bad |= wpool_task_init(&tokjob.task, job_work, job_done) != -EBUSY;
        bad |= write(fds[1], rc, sizeof(rc)) != (ssize_t)sizeof(rc);
        _exit(bad ? 1 : 0);
    }
    close(fds[1]);
    int rc[FK_N];
    ssize_t got = read(fds[0], rc, sizeof(rc));
    close(fds[0]);
    int wstatus = 0;
    ck_assert_int_eq(waitpid(pid, &wstatus, 0), pid);
    ck_assert(WIFEXITED(wstatus));
    ck_assert_int_eq(WEXITSTATUS(wstatus), 0);
    ck_assert_int_eq(got, (ssize_t)sizeof(rc));
    char wrong[1024] = "";
    size_t len = 0;
    for (int k = 0; k < FK_N; k++)
        if (rc[k] != -EOWNERDEAD && len < sizeof(wrong))
            len +=
                (size_t)snprintf(wrong + len, sizeof(wrong) - len, " %s: %d;", fk_names[k], rc[k]);
    REQUIRE(len == 0, "in the child, not -EOWNERDEAD (%d):%s", -EOWNERDEAD, wrong);
    /* The parent's pool is untouched by the child's calls. */
    gate_open(&g);
    ck_assert_int_eq(drain_all(pool), 3);
    check_once(&blocker);
    check_once(&queued);
    check_once(&tokjob);
    ck_assert_int_eq(wpool_token_destroy(tok), 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

/* ---- statistics: utilization across a reset ------------------------------------ */

/* Allowed above 1: TSC skew between the cores that read the clock. */
#define UTIL_EPS 1e-3

/* One worker runs a task for ~100 ms; the statistics are reset while it runs
 * (it is past its busy part, held at a gate), and it finishes right away. Only
 * the part of its run after the reset (if any) belongs to the new period, so
 * the utilization read at once cannot exceed 1. */
START_TEST(test_stats_utilization_across_reset)
{
    enum { RUN_US = 100000 };
    wpool_t *pool = make_pool(1, policy(_i), 16);
    struct gate g;
    atomic_int spun = 0;
    gate_init(&g);
    struct job j;
    job_init(&j, 3);
    j.spin_us = RUN_US;
    j.spun = &spun;
    j.gate = &g;
    ck_assert_int_eq(wpool_submit(pool, &j.task), 0);
    while (!atomic_load(&spun))
        sched_yield();
    struct wpool_statistics st;
    ck_assert_int_eq(wpool_stats(pool, &st), 0);
    ck_assert_uint_eq(st.running, 1);
    ck_assert_int_eq(wpool_stats_reset(pool), 0);
    gate_open(&g);
    ck_assert_int_eq(drain_all(pool), 1);
    check_once(&j);
    ck_assert_int_eq(wpool_stats(pool, &st), 0);
    ck_assert_uint_eq(st.completed, 1);
    ck_assert_uint_eq(st.running, 0);
    REQUIRE(st.utilization >= 0.0 && st.utilization <= 1.0 + UTIL_EPS,
            "utilization %g after a reset during a %d ms task (run.count %llu, max %llu us)",
            st.utilization, RUN_US / 1000, (unsigned long long)st.run.count,
            (unsigned long long)st.run.max_us);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

struct stats_loop {
    wpool_t *pool;
    atomic_bool *stop;
    long rounds;
    long bad;
    double lowest, highest; /* utilization read */
};

/* Tasks of the stress test, and the pauses that pace the resets: a reset
 * every few nanoseconds would leave every worker on an old epoch and every
 * read at 0. */
#define STRESS_TASK_US    100
#define RESET_PAUSE_US(n) (20 + (int)((n) % 16))
#define READ_PAUSE_US     10

static void *resetter_main(void *arg)
{
    struct stats_loop *s = arg;
    while (!atomic_load(s->stop)) {
        s->bad += wpool_stats_reset(s->pool) != 0;
        s->rounds++;
        spin_for_us(RESET_PAUSE_US(s->rounds)); /* a pause, not an ordering */
    }
    return NULL;
}

static void *reader_main(void *arg)
{
    struct stats_loop *s = arg;
    s->lowest = 1.0;
    s->highest = 0.0;
    while (!atomic_load(s->stop)) {
        /* Every other read follows a reset of its own by a few microseconds
         * (a pause, not an ordering), long enough for a worker to end a task
         * that began before the reset and short against the task: such reads
         * come whether or not this thread and the resetter run at once. */
        if (s->rounds % 2 == 0) {
            if (wpool_stats_reset(s->pool) != 0) {
                s->bad++;
                break;
            }
            spin_for_us(READ_PAUSE_US);
        }
        struct wpool_statistics st;
        if (wpool_stats(s->pool, &st) != 0) {
            s->bad++;
            break;
        }
        double u = st.utilization;
        s->bad += u < 0.0 || u > 1.0 + UTIL_EPS;
        if (u < s->lowest)
            s->lowest = u;
        if (u > s->highest)
            s->highest = u;
        s->rounds++;
    }
    return NULL;
}

/* Two workers run a steady stream of short tasks while one thread resets the
 * statistics in a loop and another reads them in a loop (every other read
 * shortly after a reset of its own): every utilization read is within
 * [0, 1 + eps]. A fixed amount of work, not a duration. */
START_TEST(test_stats_utilization_reset_stress)
{
    enum { BATCH = 64, ROUNDS = 50 };
    wpool_t *pool = make_pool(2, policy(_i), 256);
    struct job *jobs = calloc(BATCH, sizeof(*jobs));
    ck_assert_ptr_nonnull(jobs);
    atomic_bool stop = false;
    struct stats_loop resetter = {pool, &stop, 0, 0, 0.0, 0.0};
    struct stats_loop reader = {pool, &stop, 0, 0, 0.0, 0.0};
    pthread_t rt, rd;
    ck_assert_int_eq(pthread_create(&rt, NULL, resetter_main, &resetter), 0);
    ck_assert_int_eq(pthread_create(&rd, NULL, reader_main, &reader), 0);
    long completions = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < BATCH; i++) {
            job_init(&jobs[i], r * BATCH + i);
            jobs[i].spin_us = STRESS_TASK_US;
            ck_assert_int_eq(wpool_submit(pool, &jobs[i].task), 0);
        }
        completions += drain_all(pool);
        for (int i = 0; i < BATCH; i++)
            check_once(&jobs[i]);
    }
    atomic_store(&stop, true);
    pthread_join(rt, NULL);
    pthread_join(rd, NULL);
    struct wpool_statistics st;
    ck_assert_int_eq(wpool_stats(pool, &st), 0);
    ck_assert_int_eq(completions, (long)BATCH * ROUNDS);
    ck_assert_uint_eq(st.completed, (uint64_t)BATCH * ROUNDS);
    ck_assert_int_gt(resetter.rounds, 0);
    ck_assert_int_gt(reader.rounds, 0);
    ck_assert_int_eq(resetter.bad, 0);
    REQUIRE(reader.bad == 0,
            "%ld of %ld utilization reads outside [0, 1 + %g] (lowest %g, highest %g), %ld resets",
            reader.bad, reader.rounds, UTIL_EPS, reader.lowest, reader.highest, resetter.rounds);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    free(jobs);
}
END_TEST

/* ---- wpool_task_init --------------------------------------------------------------- */

static int other_work(struct wpool_task *t)
{
    struct job *j = (struct job *)t;
    if (j->order)
        j->order[atomic_fetch_add(j->order_n, 1)] = j->id;
    atomic_fetch_add(&j->ran, 1);
    return 100 + j->id;
}

static int g_reinit_rc;

static void reinit_done(struct wpool_task *t, int status)
{
    job_done(t, status);
    /* The record is idle once its callback runs. */
    g_reinit_rc = wpool_task_init(t, other_work, job_done);
}

/* The defined cases: a zero-filled record (= {0}, calloc, memset); an idle
 * record that completed, initialised again (data kept, work and done
 * replaced, attributes back to their defaults); a record in flight (-EBUSY,
 * nothing changed). */
START_TEST(test_task_init_contract)
{
    wpool_t *pool = make_pool(1, WPOOL_FIRST_FREE, 16);
    int marker;

    ck_assert_int_eq(wpool_task_init(NULL, job_work, job_done), -EINVAL);
    struct wpool_task z = {0};
    ck_assert_int_eq(wpool_task_init(&z, NULL, job_done), -EINVAL);
    ck_assert_int_eq(wpool_task_init(&z, job_work, NULL), -EINVAL);
    ck_assert_int_eq(wpool_submit(pool, &z), -EINVAL); /* zeroed, never initialised */

    /* Zero-filled three ways; data set before the init is kept. */
    struct job a = {0};
    struct job *b = calloc(1, sizeof(*b));
    struct job c;
    ck_assert_ptr_nonnull(b);
    memset(&c, 0, sizeof(c));
    struct job *zeroed[3] = {&a, b, &c};
    for (int i = 0; i < 3; i++) {
        zeroed[i]->id = i + 1;
        zeroed[i]->task.data = &marker;
        ck_assert_int_eq(wpool_task_init(&zeroed[i]->task, job_work, job_done), 0);
        ck_assert_ptr_eq(zeroed[i]->task.data, &marker);
        ck_assert_int_eq(wpool_submit(pool, &zeroed[i]->task), 0);
    }
    ck_assert_int_eq(drain_all(pool), 3);
    for (int i = 0; i < 3; i++) {
        check_once(zeroed[i]);
        ck_assert_ptr_eq(zeroed[i]->task.data, &marker);
    }
    free(b);

    /* Attributes that show: another port and a deadline already passed. */
    wpool_port_t *port;
    ck_assert_int_eq(wpool_port_create(pool, &port), 0);
    struct job j;
    job_init(&j, 7);
    j.task.data = &marker;
    ck_assert_int_eq(wpool_task_set_port(&j.task, port), 0);
    ck_assert_int_eq(wpool_task_set_deadline(&j.task, 1), 0);
    ck_assert_int_eq(wpool_task_set_priority(&j.task, WPOOL_PRIORITY_HIGH), 0);
    ck_assert_int_eq(wpool_submit(pool, &j.task), 0);
    ck_assert_int_eq(wpool_port_settle(port, -1), 1);
    ck_assert_int_eq(j.status, -ETIMEDOUT);
    ck_assert_int_eq(j.done_calls, 1);
    /* Idle and completed: initialised again, with other work. */
    ck_assert_int_eq(wpool_task_init(&j.task, other_work, job_done), 0);
    ck_assert_ptr_eq(j.task.data, &marker);
    /* Defaults again: the default port, no deadline, normal priority (FIFO
     * behind a normal task queued first). */
    struct gate g;
    atomic_int started = 0, order_n = 0;
    int order[2];
    gate_init(&g);
    struct job blocker, first;
    hold_worker(pool, &blocker, 1000, &g, &started);
    job_init(&first, 8);
    first.order = j.order = order;
    first.order_n = j.order_n = &order_n;
    ck_assert_int_eq(wpool_submit(pool, &first.task), 0);
    ck_assert_int_eq(wpool_submit(pool, &j.task), 0);
    /* In flight: -EBUSY, and the record is unchanged. */
    ck_assert_int_eq(wpool_task_init(&j.task, job_work, job_done), -EBUSY);
    ck_assert_int_eq(wpool_task_init(&blocker.task, job_work, job_done), -EBUSY);
    ck_assert_ptr_eq(j.task.data, &marker);
    gate_open(&g);
    ck_assert_int_eq(drain_all(pool), 3);
    ck_assert_int_eq(wpool_port_settle(port, 0), 0);
    check_once(&blocker);
    check_once(&first);
    ck_assert_int_eq(order_n, 2);
    ck_assert_int_eq(order[0], 8); /* not ahead of the normal task: priority reset */
    ck_assert_int_eq(order[1], 7);
    /* other_work ran (the in-flight init changed nothing), with no deadline,
     * and completed on the default port. */
    ck_assert_int_eq(atomic_load(&j.ran), 1);
    ck_assert_int_eq(j.status, 107);
    ck_assert_int_eq(j.done_calls, 2);
    /* A cancelled token attached, then cleared by an init. */
    j.order = NULL;
    wpool_token_t *tok;
    ck_assert_int_eq(wpool_token_create(&tok), 0);
    ck_assert_int_eq(wpool_token_cancel(tok), 0);
    ck_assert_int_eq(wpool_task_set_token(&j.task, tok), 0);
    ck_assert_int_eq(wpool_submit(pool, &j.task), -ECANCELED);
    ck_assert_int_eq(wpool_task_init(&j.task, other_work, reinit_done), 0);
    g_reinit_rc = 1;
    ck_assert_int_eq(wpool_submit(pool, &j.task), 0);
    ck_assert_int_eq(drain_all(pool), 1);
    ck_assert_int_eq(j.status, 107);
    ck_assert_int_eq(j.done_calls, 3);
    ck_assert_int_eq(atomic_load(&j.ran), 2);
    /* Re-initialised from inside its own completion callback. */
    ck_assert_int_eq(g_reinit_rc, 0);
    ck_assert_ptr_eq(j.task.data, &marker);
    ck_assert_int_eq(wpool_token_destroy(tok), 0);
    ck_assert_int_eq(wpool_port_destroy(port), 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

static Suite *regressions_suite(void)
{
    Suite *s = suite_create("regressions");
    TCase *tc = tcase_create("regressions");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_fork_child_cancel_changes_nothing, 0, 2);
    tcase_add_loop_test(tc, test_stats_utilization_across_reset, 0, 2);
    tcase_add_loop_test(tc, test_stats_utilization_reset_stress, 0, 2);
    tcase_add_test(tc, test_task_init_contract);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wp_run_suite(regressions_suite());
}

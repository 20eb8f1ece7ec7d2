/* SPDX-License-Identifier: MIT */
/*
 * wpool + GLib: the pool's completion fd is a g_unix_fd_add source on the
 * main context, so completions run on the GMainLoop's thread. A 10 ms
 * g_timeout keeps firing while the workers compute.
 *
 * Run: build/examples/wpool-glib [jobs]   (exit status 0 when every result
 * arrived exactly once, on the loop thread, and is right)
 */
#include <wpool.h>

#include <errno.h>
#include <glib-unix.h>
#include <glib.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct job {
    struct wpool_task task; /* first member: (struct job *)task */
    uint32_t n;
    uint64_t sum;
    int completions;
};

static GMainLoop *main_loop;
static pthread_t loop_thread;
static int done, jobs, wrong, ticks;

static int sum_work(struct wpool_task *task) /* on a worker */
{
    struct job *job = (struct job *)task;
    volatile uint64_t s = 0;
    for (uint32_t i = 1; i <= job->n; i++)
        s += i;
    job->sum = s;
    return 0;
}

static void sum_done(struct wpool_task *task, int status) /* on the loop thread */
{
    struct job *job = (struct job *)task;
    uint64_t want = (uint64_t)job->n * (job->n + 1) / 2;
    if (status != 0 || job->sum != want || !pthread_equal(pthread_self(), loop_thread))
        wrong++;
    job->completions++;
    done++;
}

static gboolean on_pool_readable(gint fd, GIOCondition condition, gpointer user_data)
{
    wpool_t *pool = user_data;
    int rc = wpool_dispatch(pool, 64);
    if (rc < 0)
        fprintf(stderr, "wpool_dispatch: %d\n", rc);
    if (done == jobs) {
        g_main_loop_quit(main_loop);
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static gboolean on_tick(gpointer user_data)
{
    ticks++;
    return G_SOURCE_CONTINUE;
}

int main(int argc, char **argv)
{
    jobs = argc > 1 ? atoi(argv[1]) : 64;
    if (jobs <= 0)
        return 2;
    wpool_t *pool;
    int rc = wpool_create(&pool, NULL); /* this thread owns the default port */
    if (rc) {
        fprintf(stderr, "wpool_create: %d\n", rc);
        return 1;
    }
    main_loop = g_main_loop_new(NULL, FALSE);
    loop_thread = pthread_self();
    guint watch = g_unix_fd_add(wpool_fd(pool), G_IO_IN, on_pool_readable, pool);
    guint ticker = g_timeout_add(10, on_tick, NULL);

    struct job *js = calloc((size_t)jobs, sizeof(*js));
    for (int i = 0; i < jobs; i++) {
        js[i].n = 2000000 + (uint32_t)i;
        wpool_task_init(&js[i].task, sum_work, sum_done);
        while ((rc = wpool_submit(pool, &js[i].task)) == -EAGAIN)
            wpool_dispatch(pool, 64); /* queue full: make room */
        if (rc) {
            fprintf(stderr, "wpool_submit: %d\n", rc);
            return 1;
        }
    }
    if (done < jobs)
        g_main_loop_run(main_loop);
    else
        g_source_remove(watch);

    for (int i = 0; i < jobs; i++)
        wrong += js[i].completions != 1;
    printf("GLib: %d jobs on %u workers, %d completions on the loop thread, %d wrong, "
           "%d timer ticks meanwhile\n",
           jobs, wpool_threads(pool), done, wrong, ticks);
    g_source_remove(ticker);
    g_main_loop_unref(main_loop);
    wpool_destroy(pool);
    free(js);
    return wrong == 0 && done == jobs ? 0 : 1;
}

/* SPDX-License-Identifier: MIT */
/*
 * System calls per task, counted by the kernel: one perf tracepoint counter
 * per thread of this process for sys_enter_futex (all ops, and wakes only,
 * through a tracepoint filter) and sys_enter_write. Opened after the pool's
 * threads exist, enabled only around the measured stretch. Needs root or
 * perf_event_paranoid <= 1 and tracefs; otherwise the result says why not.
 */
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* FUTEX_WAKE, FUTEX_WAKE_OP, FUTEX_WAKE_BITSET, each also | FUTEX_PRIVATE_FLAG. */
static const char wake_filter[] = "op == 1 || op == 129 || op == 5 || op == 133 || op == 10 || "
                                  "op == 138";

static long tracepoint_id(const char *event)
{
    static const char *const roots[] = {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"};
    for (int i = 0; i < 2; i++) {
        char path[256];
        snprintf(path, sizeof(path), "%s/events/syscalls/%s/id", roots[i], event);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        long id = -1;
        if (fscanf(f, "%ld", &id) != 1)
            id = -1;
        fclose(f);
        if (id >= 0)
            return id;
    }
    return -1;
}

static int open_counter(long id, pid_t tid, const char *filter)
{
    struct perf_event_attr a;
    memset(&a, 0, sizeof(a));
    a.type = PERF_TYPE_TRACEPOINT;
    a.size = sizeof(a);
    a.config = (unsigned long long)id;
    a.disabled = 1;
    int fd = (int)syscall(SYS_perf_event_open, &a, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (filter && ioctl(fd, PERF_EVENT_IOC_SET_FILTER, filter) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

void sysc_open(struct sysc *s)
{
    memset(s, 0, sizeof(*s));
    long futex = tracepoint_id("sys_enter_futex"), wr = tracepoint_id("sys_enter_write");
    if (futex < 0 || wr < 0) {
        snprintf(s->why, sizeof(s->why), "no syscall tracepoints (tracefs)");
        return;
    }
    DIR *d = opendir("/proc/self/task");
    if (!d) {
        snprintf(s->why, sizeof(s->why), "no /proc/self/task");
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        pid_t tid = (pid_t)atoi(e->d_name);
        if (s->nfds + 3 > (int)(sizeof(s->fds) / sizeof(s->fds[0]))) {
            snprintf(s->why, sizeof(s->why), "too many threads");
            break;
        }
        int fds[3] = {open_counter(futex, tid, NULL), open_counter(futex, tid, wake_filter),
                      open_counter(wr, tid, NULL)};
        for (int i = 0; i < 3; i++) {
            if (fds[i] < 0) {
                snprintf(s->why, sizeof(s->why), "perf_event_open: %s", strerror(-fds[i]));
                for (int j = 0; j < 3; j++)
                    if (fds[j] >= 0)
                        close(fds[j]);
                closedir(d);
                for (int j = 0; j < s->nfds; j++)
                    close(s->fds[j]);
                s->nfds = 0;
                return;
            }
        }
        for (int i = 0; i < 3; i++)
            s->fds[s->nfds++] = fds[i];
    }
    closedir(d);
    s->ok = s->why[0] == '\0' && s->nfds > 0;
}

void sysc_start(struct sysc *s)
{
    for (int i = 0; s->ok && i < s->nfds; i++)
        ioctl(s->fds[i], PERF_EVENT_IOC_ENABLE, 0);
}

void sysc_stop(struct sysc *s, uint64_t *futex, uint64_t *wakes, uint64_t *writes)
{
    uint64_t sums[3] = {0, 0, 0};
    for (int i = 0; s->ok && i < s->nfds; i++) {
        ioctl(s->fds[i], PERF_EVENT_IOC_DISABLE, 0);
        uint64_t v = 0;
        if (read(s->fds[i], &v, sizeof(v)) == sizeof(v))
            sums[i % 3] += v;
        close(s->fds[i]);
    }
    s->nfds = 0;
    *futex = sums[0];
    *wakes = sums[1];
    *writes = sums[2];
}

/* SPDX-License-Identifier: MIT */
/*
 * wpool_strerror: what each error code means when wpool returns it. The
 * system's strerror(3) describes the errno's original use ("Cannot send
 * after transport endpoint shutdown" for ESHUTDOWN), not wpool's; and it is
 * not thread-safe. These are constant strings: any thread may call it.
 */
#include "common.h"
#include "wpool.h"

#include <errno.h>

struct wp_error {
    int code;
    const char *text;
};

static const struct wp_error wp_errors[] = {
    {0, "success"},
    {EINVAL, "invalid argument: NULL, out of range, a task never initialised, or a port of "
             "another pool or already destroyed"},
    {EBUSY, "busy: the task is in flight, or the object is still in use"},
    {EAGAIN, "no room: the pool is full (queue capacity or max_queue); from wpool_create, a "
             "worker thread could not be created"},
    {ESHUTDOWN, "closed: the pool, or the task's port, is closed or being destroyed"},
    {ECANCELED, "cancelled: the task was cancelled before it ran, or its token is cancelled"},
    {ETIMEDOUT, "timed out: the task's deadline passed, or the call's timeout ran out"},
    {EOWNERDEAD, "inherited through fork(): the object belongs to the parent process"},
    {EALREADY, "already done: the group is already sealed"},
    {EDEADLK, "called from a task of this pool: the call would wait for itself"},
    {EPERM, "not the owner: only the thread that created the port may do this"},
    {ENOMEM, "out of memory"},
    {EMFILE, "no file descriptor left in the process for a port's eventfd"},
    {ENFILE, "no file descriptor left in the system for a port's eventfd"},
    {ENODEV, "the CPU topology could not be read"},
};

const char *wpool_strerror(int err)
{
    int code = err < 0 ? -err : err;
    for (size_t i = 0; i < sizeof(wp_errors) / sizeof(wp_errors[0]); i++)
        if (wp_errors[i].code == code)
            return wp_errors[i].text;
    return "not a wpool error code";
}

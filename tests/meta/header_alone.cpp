/* SPDX-License-Identifier: MIT */
/* The public header compiles on its own, first and alone, in C++ with
 * -Wall -Wextra -pedantic -Wshadow -Wzero-as-null-pointer-constant -Werror
 * (tests/meson.build), and every public type can be named without its
 * struct/enum keyword. */
#include <wpool.h>

namespace
{
int work(wpool_task *)
{
    return 0;
}
void done(wpool_task *, int) {}
void hook(void *, unsigned int) {}
void drained(wpool_t *, void *) {}
} // namespace

int main()
{
    wpool_options o = WPOOL_OPTIONS_INIT;
    wpool_task t = {};
    wpool_statistics st = {};
    wpool_histogram h = {};
    wpool_priority prio = WPOOL_PRIORITY_HIGH;
    wpool_close_mode mode = WPOOL_CLOSE_CANCEL;
    wpool_placement place = WPOOL_ROUND_ROBIN;
    wpool_t *pool = nullptr;
    wpool_port_t *port = nullptr;
    wpool_token_t *tok = nullptr;
    wpool_work_fn w = work;
    wpool_done_fn d = done;
    wpool_worker_fn k = hook;
    wpool_drain_fn n = drained;
    (void)t;
    (void)pool;
    (void)port;
    (void)tok;
    (void)w;
    (void)d;
    (void)k;
    (void)n;
    int bad = o.queue_capacity != WPOOL_DEFAULT_QUEUE_CAPACITY;
    bad |= st.threads != 0 || h.count != 0;
    bad |= prio != 1 || mode != 1 || place != 1;
    return bad;
}

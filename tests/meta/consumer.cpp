/* SPDX-License-Identifier: MIT */
// A C++ program using the installed library through pkg-config (CI builds it
// outside the source tree). Submits tasks, drains them, checks the results.
#include <wpool.h>

#include <cerrno>
#include <cstdio>

namespace
{

struct Square {
    wpool_task task; // first member: the record is embedded
    int in = 0;
    int out = 0;
    int status = -1;
};

int square_work(wpool_task *t)
{
    Square *s = reinterpret_cast<Square *>(t);
    s->out = s->in * s->in;
    return 0;
}

void square_done(wpool_task *t, int status)
{
    reinterpret_cast<Square *>(t)->status = status;
}

} // namespace

int main()
{
    wpool_options opts;
    wpool_options_init(&opts);
    opts.threads = 2;
    wpool_t *pool = nullptr;
    if (wpool_create(&pool, &opts) != 0)
        return 1;
    Square sq[100];
    for (int i = 0; i < 100; i++) {
        sq[i].in = i;
        wpool_task_init(&sq[i].task, square_work, square_done);
        if (wpool_submit(pool, &sq[i].task) != 0)
            return 1;
    }
    int ran = wpool_port_settle(wpool_default_port(pool), -1);
    int bad = 0;
    for (int i = 0; i < 100; i++)
        bad += sq[i].status != 0 || sq[i].out != i * i;
    if (wpool_destroy(pool) != 0)
        return 1;
    std::printf("C++ consumer: %d completions, %d wrong, wpool %s\n", ran, bad,
                wpool_version_string());
    return ran == 100 && bad == 0 ? 0 : 1;
}

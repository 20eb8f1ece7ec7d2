/* SPDX-License-Identifier: MIT */
/*
 * Cluster mode of examples/http_hash.c (--processes N), as Node's cluster
 * module and pm2 do it: a supervisor forks N single-loop servers that share
 * the port through SO_REUSEPORT, each creating its own pool after the fork
 * (a pool belongs to the process that created it: wpool(7), FORK), and
 * restarts any child that dies. SIGTERM or SIGINT stops them all.
 */
#include "http_hash.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t supervisor_stop;

/* Installed so that SIGCHLD interrupts the supervisor's sigsuspend. */
static void on_child(int sig)
{
    (void)sig;
}

static void on_supervisor_signal(int sig)
{
    (void)sig;
    supervisor_stop = 1;
}

static pid_t spawn(int slot, int supervisor_fd, unsigned threads)
{
    int port = bound_port(supervisor_fd);
    fflush(stdout);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* The child: default signal handling again, its own socket and pool.
     * SIGTERM and SIGINT stay blocked until its loop watches them (serve()
     * unblocks them): one that came while the child starts up would
     * otherwise kill it instead of stopping it cleanly. */
    close(supervisor_fd);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigprocmask(SIG_SETMASK, &stop, NULL);
    int fd = bind_reuseport(port);
    if (fd < 0) {
        fprintf(stderr, "child %d: bind: %s\n", slot, strerror(errno));
        _exit(1);
    }
    _exit(serve_with_pool(fd, threads));
}

/* Forks n servers sharing `port`, restarts any that dies, and on SIGTERM or
 * SIGINT stops them all and returns 0 once each has exited cleanly. The
 * supervisor keeps its own socket bound (not listening) so that the port
 * stays reserved while a child is being restarted. */
int supervise(int fd, int n, unsigned threads)
{
    int port = bound_port(fd);
    /* SIGCHLD (its handler does nothing) ends the sigsuspend below. */
    struct sigaction sc = {.sa_handler = on_child, .sa_flags = SA_NOCLDSTOP};
    sigaction(SIGCHLD, &sc, NULL);
    pid_t *kids = calloc((size_t)n, sizeof(*kids));
    if (!kids)
        return 1;
    struct sigaction sa = {.sa_handler = on_supervisor_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &old);
    printf("listening on 127.0.0.1:%d supervisor pid=%d processes=%d\n", port, (int)getpid(), n);
    for (int i = 0; i < n; i++) {
        kids[i] = spawn(i, fd, threads);
        printf("child %d pid=%d\n", i, (int)kids[i]);
    }
    fflush(stdout);
    int bad = 0;
    while (!supervisor_stop) {
        /* Wait for a child to die or a signal, without a race between the
         * two: signals are unblocked only inside sigsuspend. */
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0) {
            sigsuspend(&old);
            continue;
        }
        for (int i = 0; i < n; i++)
            if (kids[i] == pid) {
                kids[i] = spawn(i, fd, threads);
                printf("child %d pid=%d died (%s %d), restarted as pid=%d\n", i, (int)pid,
                       WIFSIGNALED(status) ? "signal" : "status",
                       WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), (int)kids[i]);
                fflush(stdout);
            }
    }
    for (int i = 0; i < n; i++)
        kill(kids[i], SIGTERM);
    for (int i = 0; i < n; i++) {
        int status;
        if (waitpid(kids[i], &status, 0) != kids[i] || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0)
            bad++;
    }
    close(fd);
    free(kids);
    return bad ? 1 : 0;
}

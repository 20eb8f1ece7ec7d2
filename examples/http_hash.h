/* SPDX-License-Identifier: MIT */
/* examples/http_hash.c and its cluster mode (http_supervisor.c). */
#ifndef HTTP_HASH_H
#define HTTP_HASH_H

/* A TCP socket bound to 127.0.0.1:port with SO_REUSEPORT (port 0: a free
 * one), or -1; the port a socket is bound to. */
int bind_reuseport(int port);
int bound_port(int fd);
/* Creates the pool (after any fork: a pool belongs to its process) and
 * serves on the bound socket fd until SIGTERM or SIGINT: the exit status. */
int serve_with_pool(int fd, unsigned threads);
/* Cluster mode: forks n servers sharing fd's port, restarts any that dies,
 * stops them all on SIGTERM or SIGINT: the exit status. */
int supervise(int fd, int n, unsigned threads);

#endif

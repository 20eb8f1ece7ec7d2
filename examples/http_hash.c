/* SPDX-License-Identifier: MIT */
/*
 * An HTTP service on libuv that answers GET /hash?text=... with the SHA-256 of
 * the text, re-hashed `rounds` times (about 1 ms of CPU per request by
 * default), in one of three modes:
 *
 *   --mode inline  hash on the loop thread (the loop stalls for every request)
 *   --mode uv      libuv's threadpool (uv_queue_work), UV_THREADPOOL_SIZE = cores
 *   --mode wpool   a wpool pool; completions come back through a uv_poll_t
 *
 * GET /ping answers "pong" at once on the loop (no CPU work): a probe of
 * how responsive the loop stays while /hash keeps the CPUs busy.
 * GET /quick?text=... hashes once (a few microseconds) on the pool: a
 * cheap request that needs a worker. In wpool mode it runs in a work class
 * with one reserved worker (--quick-reserved N; 0: the default class), so a
 * flood of /hash requests does not make it wait; with uv_queue_work it
 * queues behind them.
 * Bad requests get 400 (404 for another path, 431 for a header over 8 KiB),
 * never a crash. bench/http_compare.sh drives the three modes with wrk;
 * examples/http_hash_test.py checks answers and error handling.
 *
 * Several loops, several processes (the two answers to Node's cluster mode):
 *   --loops N      N libuv loops on N threads, each accepting on its own
 *                  SO_REUSEPORT socket; in wpool mode they share one pool,
 *                  each through its own completion port
 *   --processes N  a supervisor forks N single-loop servers sharing the
 *                  port (SO_REUSEPORT), each creating its own pool after the
 *                  fork, and restarts any that dies; SIGTERM stops them all
 *
 * Run: build/examples/wpool-http-hash --mode wpool [--port 8080] [--rounds N]
 *      [--threads N] [--quick-reserved N] [--loops N | --processes N]
 *      (port 0: pick a free one; the first line printed says it)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include "http_hash.h"

#include <wpool.h>

#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define MAX_HEADER 8192
#define MAX_TEXT   4096

enum mode { MODE_INLINE, MODE_UV, MODE_WPOOL };

struct conn;

/* One request in flight per connection (HTTP/1.1 keep-alive, no pipelining:
 * further bytes wait in the buffer until the response is written). */
struct request {
    struct wpool_task task; /* --mode wpool */
    uv_work_t work;         /* --mode uv */
    struct conn *conn;
    char text[MAX_TEXT];
    size_t text_len;
    unsigned long n; /* hash rounds: `rounds` for /hash, 1 for /quick */
    char hex[65];
    uv_write_t write;
    char out[512];
};

/* One event loop and what belongs to it: its listening socket, its
 * connections, and (wpool mode) its completion port. loop.data points here. */
struct server {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_poll_t pool_watch;
    wpool_port_t *port;
    uv_async_t stop; /* another thread asks this loop to stop */
    int fd;          /* the bound SO_REUSEPORT socket */
    int nconns;      /* open connections */
    bool stopping;   /* finish what is in flight, then let uv_run return */
    pthread_t thread;
};

struct conn {
    uv_tcp_t tcp; /* first member: (struct conn *)handle */
    struct server *srv;
    char buf[MAX_HEADER];
    size_t len;
    bool busy;    /* a request is being hashed or its response written */
    bool closing; /* the peer is gone: free once the request is done */
    struct request req;
};

static enum mode mode = MODE_WPOOL;
static unsigned long rounds;
static wpool_t *pool;
static unsigned quick_reserved = 1; /* workers reserved for /quick (wpool mode) */
static int quick_class = WPOOL_CLASS_NORMAL;
static struct server *servers; /* nloops of them; servers[0] runs on main */
static int nloops = 1;
static uv_signal_t sigterm, sigint; /* on servers[0]'s loop */

static EVP_MD *sha256; /* fetched once: OpenSSL 3's implicit fetch per digest
                        * takes shared locks, and threads hashing in parallel
                        * would mostly wait for each other */

/* SHA-256 of text, then of the digest, n times in all. Any thread. */
static void hash_text(const char *text, size_t len, unsigned long n, char hex[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex2(ctx, sha256, NULL);
    EVP_DigestUpdate(ctx, text, len);
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    for (unsigned long i = 1; i < n; i++) {
        EVP_DigestInit_ex2(ctx, NULL, NULL); /* same digest, no new fetch */
        EVP_DigestUpdate(ctx, md, sizeof(md));
        EVP_DigestFinal_ex(ctx, md, &mdlen);
    }
    EVP_MD_CTX_free(ctx);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* ---- connections ---------------------------------------------------------- */

static void maybe_finish(struct server *sv)
{
    if (!sv->stopping || sv->nconns > 0)
        return;
    /* Nothing in flight any more: let uv_run return. */
    if (mode == MODE_WPOOL)
        uv_close((uv_handle_t *)&sv->pool_watch, NULL);
    uv_close((uv_handle_t *)&sv->stop, NULL);
    if (sv == &servers[0]) {
        uv_close((uv_handle_t *)&sigterm, NULL);
        uv_close((uv_handle_t *)&sigint, NULL);
    }
}

static void on_closed(uv_handle_t *h)
{
    struct server *sv = ((struct conn *)h)->srv;
    free(h); /* the conn: tcp is its first member */
    sv->nconns--;
    maybe_finish(sv);
}

static void conn_close(struct conn *c)
{
    if (c->busy) { /* a worker still holds the request: finish first */
        c->closing = true;
        return;
    }
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void try_process(struct conn *c);

static void on_written(uv_write_t *w, int status)
{
    struct conn *c = w->data;
    c->busy = false;
    if (status < 0 || c->closing)
        conn_close(c);
    else
        try_process(c); /* a next request may already be buffered */
}

static void respond(struct conn *c, int code, const char *reason, const char *body)
{
    struct request *r = &c->req;
    int n = snprintf(r->out, sizeof(r->out),
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s",
                     code, reason, strlen(body), body);
    uv_buf_t b = uv_buf_init(r->out, (unsigned int)n);
    r->write.data = c;
    c->busy = true;
    if (uv_write(&r->write, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
        c->busy = false;
        conn_close(c);
    }
}

static void finish_hash(struct conn *c) /* on the loop thread, hash in c->req.hex */
{
    c->busy = false;
    if (c->closing) {
        conn_close(c);
        return;
    }
    char body[80];
    snprintf(body, sizeof(body), "%s\n", c->req.hex);
    respond(c, 200, "OK", body);
}

/* ---- the three ways to run the hash --------------------------------------- */

static int wpool_hash(struct wpool_task *task) /* on a wpool worker */
{
    struct request *r = (struct request *)task;
    hash_text(r->text, r->text_len, r->n, r->hex);
    return 0;
}

static void wpool_hashed(struct wpool_task *task, int status) /* on the loop */
{
    finish_hash(((struct request *)task)->conn);
}

static void on_pool_readable(uv_poll_t *w, int status, int events)
{
    struct server *sv = w->loop->data;
    wpool_port_dispatch(sv->port, 256);
}

static void uv_hash(uv_work_t *work) /* on a libuv threadpool thread */
{
    struct request *r = work->data;
    hash_text(r->text, r->text_len, r->n, r->hex);
}

static void uv_hashed(uv_work_t *work, int status) /* on the loop */
{
    finish_hash(((struct request *)work->data)->conn);
}

static void start_hash(struct conn *c, bool quick)
{
    struct request *r = &c->req;
    r->conn = c;
    r->n = quick ? 1 : rounds;
    c->busy = true;
    if (mode == MODE_INLINE) {
        hash_text(r->text, r->text_len, r->n, r->hex);
        finish_hash(c);
    } else if (mode == MODE_UV) {
        r->work.data = r;
        uv_queue_work(&c->srv->loop, &r->work, uv_hash, uv_hashed);
    } else {
        wpool_task_set_class(&r->task, quick ? quick_class : WPOOL_CLASS_NORMAL);
        int rc = wpool_submit(pool, &r->task);
        if (rc) { /* -EAGAIN: the queue is full; say so instead of waiting */
            c->busy = false;
            respond(c, 503, "Service Unavailable", "busy\n");
        }
    }
}

/* ---- HTTP parsing --------------------------------------------------------- */

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Decodes application/x-www-form-urlencoded [s, end) into out. -1 if malformed
 * or longer than MAX_TEXT. */
static long url_decode(const char *s, const char *end, char *out)
{
    size_t n = 0;
    while (s < end) {
        char ch = *s++;
        if (ch == '%') {
            if (end - s < 2 || hexval(s[0]) < 0 || hexval(s[1]) < 0)
                return -1;
            ch = (char)(hexval(s[0]) * 16 + hexval(s[1]));
            s += 2;
        } else if (ch == '+') {
            ch = ' ';
        }
        if (n == MAX_TEXT)
            return -1;
        out[n++] = ch;
    }
    return (long)n;
}

#define ROUTE_PING  1 /* parse_request_line: GET /ping */
#define ROUTE_QUICK 2 /* GET /quick?text=... (text decoded into r) */

/* Parses the request line in [line, eol). Returns the HTTP status to send:
 * 0 (a valid /hash request, text decoded into r), ROUTE_PING, ROUTE_QUICK,
 * 400 or 404. */
static int parse_request_line(const char *line, const char *eol, struct request *r)
{
    if (eol - line < 4 || memcmp(line, "GET ", 4) != 0)
        return 400;
    const char *target = line + 4;
    const char *sp = memchr(target, ' ', (size_t)(eol - target));
    if (!sp || eol - sp < 9 || memcmp(sp + 1, "HTTP/1.", 7) != 0)
        return 400;
    const char *q = memchr(target, '?', (size_t)(sp - target));
    const char *path_end = q ? q : sp;
    if (path_end - target == 5 && memcmp(target, "/ping", 5) == 0)
        return ROUTE_PING;
    int route = 0;
    if (path_end - target == 6 && memcmp(target, "/quick", 6) == 0)
        route = ROUTE_QUICK;
    else if (path_end - target != 5 || memcmp(target, "/hash", 5) != 0)
        return 404;
    for (const char *p = q ? q + 1 : sp; p < sp;) { /* find text= among a=b&c=d */
        const char *amp = memchr(p, '&', (size_t)(sp - p));
        const char *param_end = amp ? amp : sp;
        if (param_end - p >= 5 && memcmp(p, "text=", 5) == 0) {
            long n = url_decode(p + 5, param_end, r->text);
            if (n < 0)
                return 400;
            r->text_len = (size_t)n;
            return route;
        }
        p = param_end + 1;
    }
    return 400; /* no text parameter */
}

static void try_process(struct conn *c)
{
    if (c->busy || c->closing)
        return;
    char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!end) {
        if (c->len == sizeof(c->buf)) { /* a header that does not fit */
            c->closing = true;
            respond(c, 431, "Request Header Fields Too Large", "header too large\n");
        }
        return;
    }
    size_t used = (size_t)(end + 4 - c->buf);
    char *eol = memmem(c->buf, used, "\r\n", 2);
    int status = parse_request_line(c->buf, eol, &c->req);
    memmove(c->buf, c->buf + used, c->len - used); /* keep what follows */
    c->len -= used;
    if (status == ROUTE_PING)
        respond(c, 200, "OK", "pong\n");
    else if (status == 404)
        respond(c, 404, "Not Found", "try /hash?text=..., /quick?text=... or /ping\n");
    else if (status && status != ROUTE_QUICK)
        respond(c, 400, "Bad Request", "expected GET /hash?text=...\n");
    else
        start_hash(c, status == ROUTE_QUICK);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct conn *c = (struct conn *)h;
    *b = uv_buf_init(c->buf + c->len, (unsigned int)(sizeof(c->buf) - c->len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct conn *c = (struct conn *)s;
    if (n < 0) { /* EOF or error */
        uv_read_stop(s);
        conn_close(c);
        return;
    }
    c->len += (size_t)n;
    try_process(c);
}

static void on_connection(uv_stream_t *srv, int status)
{
    if (status < 0)
        return;
    struct server *sv = srv->loop->data;
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->srv = sv;
    uv_tcp_init(&sv->loop, &c->tcp);
    sv->nconns++;
    if (uv_accept(srv, (uv_stream_t *)&c->tcp) < 0) {
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return;
    }
    wpool_task_init(&c->req.task, wpool_hash, wpool_hashed);
    if (mode == MODE_WPOOL)
        wpool_task_set_port(&c->req.task, sv->port); /* completions on this loop */
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---- main ------------------------------------------------------------------ */

static void close_conn(uv_handle_t *h, void *arg)
{
    struct server *sv = arg;
    if (h->type == UV_TCP && h != (uv_handle_t *)&sv->listener && !uv_is_closing(h)) {
        uv_read_stop((uv_stream_t *)h);
        conn_close((struct conn *)h); /* after its request, if one is in flight */
    }
}

/* On the server's own loop: stop accepting, close the connections once
 * their requests are answered, then let uv_run return. */
static void server_stop(struct server *sv)
{
    if (sv->stopping)
        return;
    sv->stopping = true;
    uv_close((uv_handle_t *)&sv->listener, NULL);
    uv_walk(&sv->loop, close_conn, sv);
    maybe_finish(sv);
}

static void on_stop(uv_async_t *a)
{
    server_stop(a->loop->data);
}

static void on_signal(uv_signal_t *s, int signum)
{
    for (int i = 1; i < nloops; i++)
        uv_async_send(&servers[i].stop);
    server_stop(&servers[0]);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Rounds that take about 1 ms on this machine: warm up (the first digest
 * pays for OpenSSL's setup), then time at least 20 ms of hashing. */
static unsigned long calibrate(void)
{
    char hex[65];
    hash_text("warm up", 7, 100, hex);
    unsigned long n = 100;
    for (;;) {
        double t0 = now_s();
        hash_text("calibrate", 9, n, hex);
        double dt = now_s() - t0;
        if (dt >= 0.02) {
            unsigned long r = (unsigned long)(0.001 * (double)n / dt);
            return r ? r : 1;
        }
        n *= 2;
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: wpool-http-hash [--mode inline|uv|wpool] [--port N] [--rounds N] "
                    "[--threads N] [--quick-reserved N] [--loops N | --processes N]\n");
    exit(2);
}

/* A TCP socket bound to 127.0.0.1:port with SO_REUSEPORT (port 0: a free
 * one), or -1. */
int bind_reuseport(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

int bound_port(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    return ntohs(a.sin_port);
}

/* Sets up a server's loop on the calling thread (its port's owner): 0 or -1. */
static int server_open(struct server *sv)
{
    uv_loop_init(&sv->loop);
    sv->loop.data = sv;
    uv_async_init(&sv->loop, &sv->stop, on_stop);
    if (mode == MODE_WPOOL) {
        int rc = wpool_port_create(pool, &sv->port);
        if (rc) {
            fprintf(stderr, "wpool_port_create: %s\n", wpool_strerror(rc));
            return -1;
        }
        uv_poll_init(&sv->loop, &sv->pool_watch, wpool_port_fd(sv->port));
        uv_poll_start(&sv->pool_watch, UV_READABLE, on_pool_readable);
    }
    uv_tcp_init(&sv->loop, &sv->listener);
    int rc = uv_tcp_open(&sv->listener, sv->fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&sv->listener, 1024, on_connection);
    if (rc < 0) {
        fprintf(stderr, "listen: %s\n", uv_strerror(rc));
        return -1;
    }
    return 0;
}

/* Runs the loop until it stops, then tears it down on the same thread. */
static void server_run(struct server *sv)
{
    uv_run(&sv->loop, UV_RUN_DEFAULT); /* returns once stopping and every conn closed */
    if (sv->port) {
        int rc = wpool_port_destroy(sv->port); /* nothing is in flight any more */
        if (rc)
            fprintf(stderr, "wpool_port_destroy: %s\n", wpool_strerror(rc));
    }
    uv_loop_close(&sv->loop);
}

static void *server_thread(void *arg)
{
    struct server *sv = arg;
    if (server_open(sv) != 0)
        exit(1);
    server_run(sv);
    return NULL;
}

/* One process serving on the bound socket fd0 (and nloops - 1 more bound to
 * the same port): the pool, the loops, then the teardown. */
static int serve(int fd0, const char *nthreads_out)
{
    servers = calloc((size_t)nloops, sizeof(*servers));
    if (!servers)
        return 1;
    int port = bound_port(fd0);
    for (int i = 0; i < nloops; i++) {
        servers[i].fd = i == 0 ? fd0 : bind_reuseport(port);
        if (servers[i].fd < 0) {
            fprintf(stderr, "bind 127.0.0.1:%d (SO_REUSEPORT): %s\n", port, strerror(errno));
            return 1;
        }
    }
    if (server_open(&servers[0]) != 0)
        return 1;
    uv_signal_init(&servers[0].loop, &sigterm);
    uv_signal_start_oneshot(&sigterm, on_signal, SIGTERM);
    uv_signal_init(&servers[0].loop, &sigint);
    uv_signal_start_oneshot(&sigint, on_signal, SIGINT);
    /* A cluster child starts with both blocked (http_supervisor.c): one sent
     * while it started up is delivered now, to the loop's handler. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_UNBLOCK, &stop, NULL);
    for (int i = 1; i < nloops; i++)
        pthread_create(&servers[i].thread, NULL, server_thread, &servers[i]);
    static const char *names[] = {"inline", "uv", "wpool"};
    printf("listening on 127.0.0.1:%d mode=%s rounds=%lu threads=%s loops=%d pid=%d\n", port,
           names[mode], rounds, nthreads_out, nloops, (int)getpid());
    fflush(stdout);
    server_run(&servers[0]);
    for (int i = 1; i < nloops; i++)
        pthread_join(servers[i].thread, NULL);
    free(servers);
    return 0;
}

/* Creates the pool (after any fork: a pool belongs to its process) and
 * serves. */
int serve_with_pool(int fd0, unsigned threads)
{
    sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
    if (!sha256) {
        fprintf(stderr, "OpenSSL has no SHA2-256\n");
        return 1;
    }
    if (rounds == 0)
        rounds = calibrate();
    /* Same number of threads for both pools: one per allowed core. */
    struct wpool_options opts = WPOOL_OPTIONS_INIT;
    opts.threads = threads;
    int rc = wpool_create(&pool, &opts);
    if (rc) {
        fprintf(stderr, "wpool_create: %s\n", wpool_strerror(rc));
        return 1;
    }
    /* /quick's class: its reserved workers keep to it while /hash floods
     * the others (a one-worker pool has none to spare). */
    if (quick_reserved && wpool_threads(pool) > quick_reserved) {
        struct wpool_class_options co = WPOOL_CLASS_OPTIONS_INIT;
        co.reserved_workers = quick_reserved;
        quick_class = wpool_class_create(pool, &co);
        if (quick_class < 0) {
            fprintf(stderr, "wpool_class_create: %s\n", wpool_strerror(quick_class));
            wpool_destroy(pool);
            return 1;
        }
    }
    char nthreads[16];
    snprintf(nthreads, sizeof(nthreads), "%u", wpool_threads(pool));
    setenv("UV_THREADPOOL_SIZE", nthreads, 1); /* before libuv's pool starts */
    rc = serve(fd0, nthreads);
    wpool_destroy(pool);
    EVP_MD_free(sha256);
    return rc;
}

int main(int argc, char **argv)
{
    int port = 8080, processes = 0;
    unsigned threads = 0;
    if (argc % 2 == 0) /* flags come in pairs: --name value */
        usage();
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *v = argv[i + 1];
        if (!strcmp(argv[i], "--mode") && !strcmp(v, "inline"))
            mode = MODE_INLINE;
        else if (!strcmp(argv[i], "--mode") && !strcmp(v, "uv"))
            mode = MODE_UV;
        else if (!strcmp(argv[i], "--mode") && !strcmp(v, "wpool"))
            mode = MODE_WPOOL;
        else if (!strcmp(argv[i], "--port"))
            port = atoi(v);
        else if (!strcmp(argv[i], "--rounds"))
            rounds = strtoul(v, NULL, 10);
        else if (!strcmp(argv[i], "--threads"))
            threads = (unsigned)atoi(v);
        else if (!strcmp(argv[i], "--quick-reserved") && atoi(v) >= 0)
            quick_reserved = (unsigned)atoi(v);
        else if (!strcmp(argv[i], "--loops") && atoi(v) >= 1)
            nloops = atoi(v);
        else if (!strcmp(argv[i], "--processes") && atoi(v) >= 1)
            processes = atoi(v);
        else
            usage();
    }
    if (processes && nloops > 1)
        usage();
    int fd = bind_reuseport(port);
    if (fd < 0) {
        fprintf(stderr, "bind 127.0.0.1:%d: %s\n", port, strerror(errno));
        return 1;
    }
    if (processes)
        return supervise(fd, processes, threads);
    return serve_with_pool(fd, threads);
}

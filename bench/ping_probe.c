/* SPDX-License-Identifier: MIT */
/*
 * A fixed-rate latency probe for examples/http_hash.c: sends GET /ping on one
 * keep-alive connection at RATE requests per second for SECONDS, and reports
 * the latency of each answer measured from the time its request was *meant*
 * to be sent (start + i / RATE), not from when it was sent: a server that
 * stalls delays the requests queued behind the stall, and each of those
 * counts the wait (no coordinated omission).
 *
 * usage: wpool-ping-probe PORT [RATE=200] [SECONDS=5] [PATH=/ping]
 * (PATH: e.g. /quick?text=probe, a cheap request that needs a worker)
 * prints: ping n=N rate=R p50_us=.. p99_us=.. p999_us=.. max_us=.. errors=E
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int connect_to(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads one response (headers and its Content-Length body); 0 or -1. */
static int read_response(int fd)
{
    char buf[1024];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        const char *cl = strstr(buf, "Content-Length: ");
        if (end && cl) {
            size_t body = strtoul(cl + 16, NULL, 10);
            if (len >= (size_t)(end + 4 - buf) + body)
                return strncmp(buf, "HTTP/1.1 200", 12) == 0 ? 0 : -1;
        }
        if (len == sizeof(buf) - 1)
            return -1;
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [RATE] [SECONDS] [PATH]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    double rate = argc > 2 ? atof(argv[2]) : 200;
    double secs = argc > 3 ? atof(argv[3]) : 5;
    if (rate <= 0 || secs <= 0)
        return 2;
    size_t n = (size_t)(rate * secs);
    uint64_t *lat = calloc(n ? n : 1, sizeof(*lat));
    int fd = connect_to(port);
    if (!lat || fd < 0) {
        fprintf(stderr, "ping_probe: cannot connect to port %d: %s\n", port, strerror(errno));
        return 1;
    }
    char req[512];
    int reqlen = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: probe\r\n\r\n",
                          argc > 4 ? argv[4] : "/ping");
    if (reqlen <= 0 || (size_t)reqlen >= sizeof(req)) {
        fprintf(stderr, "ping_probe: path too long\n");
        return 2;
    }
    uint64_t period = (uint64_t)(1e9 / rate), start = now_ns() + 1000000u;
    size_t done = 0, errors = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t intended = start + i * period;
        struct timespec at = {(time_t)(intended / 1000000000u), (long)(intended % 1000000000u)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL) == EINTR)
            ;
        if (write(fd, req, (size_t)reqlen) != (ssize_t)reqlen || read_response(fd) != 0) {
            errors++;
            close(fd);
            if ((fd = connect_to(port)) < 0)
                break;
            continue;
        }
        lat[done++] = now_ns() - intended;
    }
    if (fd >= 0)
        close(fd);
    qsort(lat, done, sizeof(*lat), cmp_u64);
#define Q(q) (done ? lat[(size_t)((double)(done - 1) * (q))] / 1000 : 0)
    printf("ping n=%zu rate=%.0f p50_us=%llu p99_us=%llu p999_us=%llu max_us=%llu errors=%zu\n",
           done, rate, (unsigned long long)Q(0.50), (unsigned long long)Q(0.99),
           (unsigned long long)Q(0.999), (unsigned long long)(done ? lat[done - 1] / 1000 : 0),
           errors);
    free(lat);
    return errors ? 1 : 0;
}

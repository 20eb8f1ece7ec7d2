/* SPDX-License-Identifier: MIT */
#include "plain_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct plain_pool {
    pthread_mutex_t lock; /* the task queue */
    pthread_cond_t cond;
    struct plain_task *head, *tail;
    bool stop;
    pthread_mutex_t done_lock; /* the completion list */
    struct plain_task *done_head, *done_tail;
    int efd;
    unsigned int nthreads;
    pthread_t threads[];
};

static void *plain_worker(void *arg)
{
    struct plain_pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        while (!p->head && !p->stop)
            pthread_cond_wait(&p->cond, &p->lock);
        struct plain_task *t = p->head;
        if (!t) { /* stopping and nothing left */
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        p->head = t->next;
        if (!p->head)
            p->tail = NULL;
        pthread_mutex_unlock(&p->lock);

        t->work(t);

        t->next = NULL;
        pthread_mutex_lock(&p->done_lock);
        bool was_empty = !p->done_head;
        if (p->done_tail)
            p->done_tail->next = t;
        else
            p->done_head = t;
        p->done_tail = t;
        pthread_mutex_unlock(&p->done_lock);
        if (was_empty) {
            uint64_t one = 1;
            while (write(p->efd, &one, sizeof(one)) < 0 && errno == EINTR)
                ;
        }
    }
}

int plain_pool_create(struct plain_pool **poolp, unsigned int threads)
{
    struct plain_pool *p = calloc(1, sizeof(*p) + threads * sizeof(pthread_t));
    if (!p)
        return -ENOMEM;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    pthread_mutex_init(&p->done_lock, NULL);
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->efd < 0) {
        int err = -errno;
        free(p);
        return err;
    }
    for (; p->nthreads < threads; p->nthreads++) {
        int rc = pthread_create(&p->threads[p->nthreads], NULL, plain_worker, p);
        if (rc) {
            plain_pool_destroy(p);
            return -rc;
        }
    }
    *poolp = p;
    return 0;
}

void plain_pool_submit(struct plain_pool *p, struct plain_task *t)
{
    t->next = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->tail)
        p->tail->next = t;
    else
        p->head = t;
    p->tail = t;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
}

int plain_pool_fd(const struct plain_pool *p)
{
    return p->efd;
}

unsigned int plain_pool_dispatch(struct plain_pool *p)
{
    uint64_t v;
    /* Read first: a worker that appends after our grab writes again. */
    if (read(p->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        return 0;
    pthread_mutex_lock(&p->done_lock);
    struct plain_task *t = p->done_head;
    p->done_head = p->done_tail = NULL;
    pthread_mutex_unlock(&p->done_lock);
    unsigned int n = 0;
    while (t) {
        struct plain_task *next = t->next;
        t->done(t);
        t = next;
        n++;
    }
    return n;
}

void plain_pool_destroy(struct plain_pool *p)
{
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (unsigned int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    close(p->efd);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->done_lock);
    free(p);
}

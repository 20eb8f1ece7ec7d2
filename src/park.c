#include "park.h"

#include <endian.h>
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define WP_PARK_WAITER      UINT64_C(1)
#define WP_PARK_EPOCH       (UINT64_C(1) << 32)
#define WP_PARK_WAITERS(w)  ((uint32_t)((w)&0xffffffffu))
#define WP_PARK_EPOCH_OF(w) ((uint32_t)((w) >> 32))

_Static_assert(sizeof(_Atomic uint64_t) == 8 && sizeof(_Atomic uint32_t) == 4,
               "the futex word must be the epoch half of the 64-bit word");

/* The high (epoch) half of the 64-bit word, as the kernel sees it. Only the
 * kernel reads through this pointer; C code always uses the whole word. */
static _Atomic uint32_t *wp_park_epoch_addr(struct wp_park *p)
{
#if __BYTE_ORDER == __LITTLE_ENDIAN
    return (_Atomic uint32_t *)(void *)&p->word + 1;
#else
    return (_Atomic uint32_t *)(void *)&p->word;
#endif
}

int wp_futex_wait(_Atomic uint32_t *addr, uint32_t expected)
{
    long rc = syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
    return rc == 0 ? 0 : -errno;
}

int wp_futex_wake(_Atomic uint32_t *addr, int n)
{
    long rc = syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
    return rc < 0 ? -errno : (int)rc;
}

void wp_park_init(struct wp_park *p)
{
    atomic_init(&p->word, 0);
}

uint32_t wp_park_prepare(struct wp_park *p)
{
    uint64_t prev = atomic_fetch_add_explicit(&p->word, WP_PARK_WAITER, memory_order_seq_cst);
    return WP_PARK_EPOCH_OF(prev);
}

void wp_park_cancel(struct wp_park *p)
{
    /* Relaxed: the count is only a hint for notifiers; a stale non-zero count
     * costs one spare FUTEX_WAKE, never a lost one. */
    atomic_fetch_sub_explicit(&p->word, WP_PARK_WAITER, memory_order_relaxed);
}

void wp_park_wait(struct wp_park *p, uint32_t key)
{
    for (;;) {
        /* Acquire: pairs with the notifier's epoch bump (acq_rel RMW). */
        uint64_t w = atomic_load_explicit(&p->word, memory_order_acquire);
        if (WP_PARK_EPOCH_OF(w) != key)
            break;
        /* Returns at once with EAGAIN if the epoch half moved; EINTR cannot
         * happen to workers (all signals blocked) but is handled the same. */
        wp_futex_wait(wp_park_epoch_addr(p), key);
    }
    wp_park_cancel(p);
}

int wp_park_wait_for(struct wp_park *p, uint32_t key, uint64_t timeout_ns)
{
    struct timespec now, end;
    clock_gettime(CLOCK_MONOTONIC, &now);
    uint64_t end_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec + timeout_ns;
    end.tv_sec = (time_t)(end_ns / 1000000000u);
    end.tv_nsec = (long)(end_ns % 1000000000u);
    int rc = 0;
    for (;;) {
        /* Acquire: pairs with the notifier's epoch bump (acq_rel RMW). */
        uint64_t w = atomic_load_explicit(&p->word, memory_order_acquire);
        if (WP_PARK_EPOCH_OF(w) != key)
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec)) {
            rc = -ETIMEDOUT;
            break;
        }
        struct timespec left = {end.tv_sec - now.tv_sec, end.tv_nsec - now.tv_nsec};
        if (left.tv_nsec < 0) {
            left.tv_sec--;
            left.tv_nsec += 1000000000L;
        }
        syscall(SYS_futex, wp_park_epoch_addr(p), FUTEX_WAIT_PRIVATE, key, &left, NULL, 0);
    }
    wp_park_cancel(p);
    return rc;
}

void wp_park_notify(struct wp_park *p, int n)
{
    /* seq_cst load: the second half of the Dekker pattern (see park.h). */
    uint64_t w = atomic_load_explicit(&p->word, memory_order_seq_cst);
    if (WP_LIKELY(WP_PARK_WAITERS(w) == 0))
        return;
    atomic_fetch_add_explicit(&p->word, WP_PARK_EPOCH, memory_order_acq_rel);
    wp_futex_wake(wp_park_epoch_addr(p), n);
}

void wp_park_notify_all(struct wp_park *p)
{
    uint64_t prev = atomic_fetch_add_explicit(&p->word, WP_PARK_EPOCH, memory_order_seq_cst);
    if (WP_PARK_WAITERS(prev))
        wp_futex_wake(wp_park_epoch_addr(p), INT_MAX);
}

uint32_t wp_park_waiters(struct wp_park *p)
{
    return WP_PARK_WAITERS(atomic_load_explicit(&p->word, memory_order_relaxed));
}

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

/*
 * Sleepers tag themselves with bit (key mod 32); a notify that moved the epoch
 * to E wakes only sleepers whose tag is not E's. So its wakes reach waiters it
 * released (keys before E), never one that registered after it and would only
 * go back to sleep -- which would leave a released, claimed waiter asleep and
 * uncounted. A waiter 32 epochs stale shares E's tag; the shortfall wake in
 * wp_park_notify reaches it (see there).
 */
static uint32_t wp_park_tag(uint32_t key)
{
    return UINT32_C(1) << (key & 31u);
}

static void wp_park_sleep(struct wp_park *p, uint32_t key, const struct timespec *abs_deadline)
{
    /* FUTEX_WAIT_BITSET's timeout is absolute, on CLOCK_MONOTONIC. Returns
     * at once (EAGAIN) if the epoch half moved; EINTR cannot happen to workers
     * (all signals blocked) and is handled like a spurious wakeup. */
    syscall(SYS_futex, wp_park_epoch_addr(p), FUTEX_WAIT_BITSET_PRIVATE, key, abs_deadline, NULL,
            wp_park_tag(key));
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

/* Deregisters a waiter with this key unless a notifier already did: a claim
 * always moves the epoch, so "epoch still == key" means nobody claimed a
 * waiter since we registered, and our unit is still in the count. */
static void wp_park_leave(struct wp_park *p, uint32_t key)
{
    uint64_t w = atomic_load_explicit(&p->word, memory_order_relaxed);
    while (WP_PARK_EPOCH_OF(w) == key && WP_PARK_WAITERS(w) > 0) {
        /* Relaxed: the count only decides whether a notifier makes a system
         * call; the epoch comparison carries the correctness. */
        if (atomic_compare_exchange_weak_explicit(&p->word, &w, w - WP_PARK_WAITER,
                                                  memory_order_relaxed, memory_order_relaxed))
            return;
    }
}

void wp_park_cancel(struct wp_park *p, uint32_t key)
{
    wp_park_leave(p, key);
}

void wp_park_wait(struct wp_park *p, uint32_t key)
{
    for (;;) {
        /* Acquire: pairs with the notifier's epoch bump (acq_rel RMW). */
        uint64_t w = atomic_load_explicit(&p->word, memory_order_acquire);
        if (WP_PARK_EPOCH_OF(w) != key)
            break;
        wp_park_sleep(p, key, NULL);
    }
    /* The epoch moved: a notifier claimed a waiter (took one off the count)
     * as it moved it, so there is nothing to deregister. If the claim was
     * meant for another waiter of the same key that wakes too, the count is
     * one high until the next notify consumes it: one spare FUTEX_WAKE, never
     * a lost one. */
}

int wp_park_wait_for(struct wp_park *p, uint32_t key, uint64_t timeout_ns)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    uint64_t end_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec + timeout_ns;
    struct timespec end = {(time_t)(end_ns / 1000000000u), (long)(end_ns % 1000000000u)};
    for (;;) {
        /* Acquire: pairs with the notifier's epoch bump (acq_rel RMW). */
        uint64_t w = atomic_load_explicit(&p->word, memory_order_acquire);
        if (WP_PARK_EPOCH_OF(w) != key)
            return 0;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec >= end_ns) {
            wp_park_leave(p, key);
            return -ETIMEDOUT;
        }
        wp_park_sleep(p, key, &end);
    }
}

void wp_park_notify(struct wp_park *p, int n)
{
    /* seq_cst load: the second half of the Dekker pattern (see park.h). */
    uint64_t w = atomic_load_explicit(&p->word, memory_order_seq_cst);
    if (WP_LIKELY(WP_PARK_WAITERS(w) == 0))
        return;
    /* Claim up to n waiters and move the epoch in one RMW: the next notify
     * sees them gone and makes no system call for a waiter already woken
     * but not yet running (which, on a busy machine, is most of them). */
    uint64_t claim;
    do {
        uint32_t waiters = WP_PARK_WAITERS(w);
        if (waiters == 0)
            return;
        claim = (uint64_t)((uint32_t)n < waiters ? (uint32_t)n : waiters);
        /* acq_rel: pairs with the waiter's acquire load of the epoch. */
    } while (!atomic_compare_exchange_weak_explicit(&p->word, &w, w - claim + WP_PARK_EPOCH,
                                                    memory_order_acq_rel, memory_order_relaxed));
    uint32_t epoch = WP_PARK_EPOCH_OF(w) + 1;
    long woken = syscall(SYS_futex, wp_park_epoch_addr(p), FUTEX_WAKE_BITSET_PRIVATE, (int)claim,
                         NULL, NULL, ~wp_park_tag(epoch));
    /* Fewer woken than claimed: the claimed waiters were not asleep yet (they
     * will see the epoch moved and not sleep), or one is 32 epochs stale and
     * shares this epoch's tag. Wake that many more, any tag: the kernel wakes
     * in arrival order, so a stale sleeper comes before any that registered
     * after this notify (which would go back to sleep). */
    if (woken >= 0 && (uint64_t)woken < claim)
        wp_futex_wake(wp_park_epoch_addr(p), (int)(claim - (uint64_t)woken));
}

void wp_park_notify_all(struct wp_park *p)
{
    /* Claims every waiter (count to zero) and moves the epoch: an RMW, so it
     * is ordered after any RMW the caller made before it. */
    uint64_t w = atomic_load_explicit(&p->word, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&p->word, &w,
                                                  (w & ~(uint64_t)0xffffffffu) + WP_PARK_EPOCH,
                                                  memory_order_seq_cst, memory_order_relaxed))
        ;
    if (WP_PARK_WAITERS(w))
        wp_futex_wake(wp_park_epoch_addr(p), INT_MAX);
}

uint32_t wp_park_waiters(struct wp_park *p)
{
    return WP_PARK_WAITERS(atomic_load_explicit(&p->word, memory_order_relaxed));
}

/*
 * Eventcount: lets workers sleep on "no work" without losing a wakeup, and lets
 * a producer with no sleeper notify without any system call.
 *
 * One 64-bit word: the high 32 bits are an epoch, the low 32 the number of
 * threads between prepare and the end of their wait. Linux futexes are 32-bit,
 * so a sleeper waits on the epoch half.
 *
 * Waiter:   key = wp_park_prepare(p);        // RMW: waiters++, read epoch
 *           if (work is visible) wp_park_cancel(p, key);
 *           else wp_park_wait(p, key);       // sleeps while epoch == key
 * Notifier: make work visible with a seq_cst store or RMW, then wp_park_notify,
 *           which claims the waiters it wakes: waiters -= n and epoch++ in one
 *           RMW. A waiter deregisters itself only while the epoch still equals
 *           its key (no claim since it registered), so the count never drops
 *           below the number of waiters that still sleep on the current epoch;
 *           it can run one high (two waiters of one key wake for one claim),
 *           which costs one spare FUTEX_WAKE later, never a lost wakeup.
 *
 * Why no wakeup is lost: the waiter's prepare is a seq_cst RMW followed by a
 * seq_cst load of the work; the notifier's publication is seq_cst followed by a
 * seq_cst load of the word. In the single total order of seq_cst operations
 * either the notifier's load comes after the prepare (it sees waiters > 0, bumps
 * the epoch with an RMW and calls FUTEX_WAKE; the waiter's FUTEX_WAIT then either
 * finds epoch != key and returns, or is asleep and is woken), or it comes before,
 * and then the publication precedes the waiter's re-check, which sees the work.
 * Only RMWs and seq_cst accesses are used (no standalone fences), so
 * ThreadSanitizer follows the ordering. The protocol is argued in
 * docs/design.md.
 */
#ifndef WP_PARK_H
#define WP_PARK_H

#include "common.h"
#include <stdint.h>

struct wp_park {
    WP_ALIGNED _Atomic uint64_t word;
    char pad[WP_CACHELINE - sizeof(uint64_t)];
};

void wp_park_init(struct wp_park *p);
/* Registers the caller as a waiter; returns the key for wp_park_wait. */
uint32_t wp_park_prepare(struct wp_park *p);
/* Deregisters after prepare when the caller found work and will not wait
 * (unless a notifier has claimed it meanwhile). */
void wp_park_cancel(struct wp_park *p, uint32_t key);
/* Sleeps until the epoch moves past key. The notifier that moves it claims
 * (deregisters) the waiters it wakes. */
void wp_park_wait(struct wp_park *p, uint32_t key);
/* wp_park_wait for at most timeout_ns: 0 when the epoch moved, -ETIMEDOUT
 * otherwise; deregisters either way. */
int wp_park_wait_for(struct wp_park *p, uint32_t key, uint64_t timeout_ns);
/* Claims and wakes up to n waiters if there are any; no system call when
 * there are none, nor for waiters an earlier notify already claimed. Call
 * after publishing work with a seq_cst store or RMW. */
void wp_park_notify(struct wp_park *p, int n);
/* Wakes every waiter; always advances the epoch (an RMW), so it is ordered
 * after any RMW the caller made before it. */
void wp_park_notify_all(struct wp_park *p);
/* Waiters registered now (a snapshot, for tests and stats). */
uint32_t wp_park_waiters(struct wp_park *p);

/* Thin futex(2) wrappers, private flavour. */
int wp_futex_wait(_Atomic uint32_t *addr, uint32_t expected);
int wp_futex_wake(_Atomic uint32_t *addr, int n);

#endif

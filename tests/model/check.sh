#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Model checks of the lock-free protocols (docs/model.md):
#   park.pml       the workers' parking lot sleep/wake (park.c as used by worker.c)
#   port.pml       the completion port's eventfd signalling (port.c)
#   port_life.pml  a completion port's destroy racing submits and posts (port.c)
#   room.pml       backpressure (max_queue) and the drain notification (room.c)
#   overflow.pml   a lane's ring and overflow list: order, exactly once (overflow.c)
#   defer.pml      deferred completion: worker and completers, destroy's wait (defer.c)
#   strand.pml     strands: order, no overlap, release, cancel, close (strand.c)
#   classcap.pml   work classes: the cap, reserved workers' wakes (worker.c, submit.c)
#   start.pml      the ticker's start handshake (ticker.c)
# Search cost: pan hashes with -DSFH (a faster hash function; the search is
# as exhaustive). A broken variant may name pan's -DT_REVERSE (transitions
# tried in reverse order) or -DP_REVERSE (processes) where that reaches its
# counterexample without first exploring most of the state space;
# classcap.pml's verifier takes longer to compile at -O2 than its smaller
# searches take to run at -O0.
# Each correct model must verify with no error; each deliberately broken
# variant must produce the expected counterexample, which shows that the
# properties can fail (the check is not vacuous).
#
# Usage: tests/model/check.sh [SOURCE_ROOT]    (needs spin and a C compiler)
# Prints one line per check; exits non-zero if any check is not as expected.
set -euo pipefail

root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
spin=${SPIN:-spin}
cc=${CC:-cc}
jobs=${MODEL_JOBS:-2}
command -v "$spin" >/dev/null || { echo "model: spin not found" >&2; exit 77; }
command -v "$cc" >/dev/null || { echo "model: no C compiler ($cc)" >&2; exit 77; }

work=$(mktemp -d "${TMPDIR:-/tmp}/wpool-model.XXXXXX")
trap 'rm -rf "$work"' EXIT

# name | model | spin -D flags | pan compile flags | pan run flags | expect
#   expect: "pass", or a regular expression that pan's first error must match
checks=(
  # park.pml models the parking lot of park.c as used by worker.c (see
  # docs/model.md). A cancel that finds its node already claimed passes the
  # wake on (FIX_CANCEL=1, the default and what park.c does); without it
  # (FIX_CANCEL=0, the first parking-lot design) a task published for that
  # notify waits while the other worker sleeps: kept as a variant that must
  # fail, with the other ingredients.
  # The notifier's futex wake comes after its unlock (LOCKED_WAKE: under
  # it, the design before). A late wake may land on a later wait of the same
  # node, a spurious wake; the 2 x 1 run allows no other spurious wakeup
  # (with one more its state space passes 4 GiB), the 1 x 2 run allows one.
  "park|park.pml|-DNW=2 -DNP=2 -DK=1 -DSPURIOUS=0|-DSAFETY|-m200000|pass"
  "park-1p2t|park.pml|-DNW=2 -DNP=1 -DK=2|-DSAFETY|-m200000|pass"
  "park-absorb|park.pml|-DNW=2 -DNP=1 -DK=2 -DFIX_CANCEL=0|-DSAFETY -DT_REVERSE|-m200000|assertion violated \(\(head==tail\)"
  "park-broken|park.pml|-DBROKEN|-DSAFETY|-m200000|invalid end state|assertion violated \(\(head==tail\)"
  "park-nochain|park.pml|-DNO_CHAIN|-DSAFETY -DT_REVERSE|-m200000|assertion violated \(\(head==tail\)"
  # The space park (wpool_submit_wait) makes its wakes under the lock and
  # its waits may time out: park-space.
  "park-lockedwake|park.pml|-DLOCKED_WAKE|-DSAFETY|-m200000|pass"
  "park-space|park.pml|-DLOCKED_WAKE -DTIMED|-DSAFETY|-m200000|pass"
  "park-nolockedsignal|park.pml|-DNO_LOCKED_SIGNAL|-DSAFETY -DT_REVERSE|-m200000|assertion violated +!\(queued\[me\]\)"
  "port|port.pml|-DNP=2 -DK=2|-DSAFETY|-m100000|pass"
  "port-cycles|port.pml|-DNP=2 -DK=2|-DNP|-l -m100000|pass"
  "port-broken|port.pml|-DBROKEN|-DSAFETY|-m100000|assertion violated \(\(head==0\)&&\(ready==0\)\)"
  "port-nogiveback|port.pml|-DNO_GIVEBACK|-DSAFETY|-m100000|assertion violated \(\(efd\+writing\)==\(owed\+pending\)\)"
  # The coalesce_us option (ticker.h): a worker whose push found the port
  # QUIET holds its signal until it looks for its next task. Finding none,
  # it signals (and arms a HELD port); finding one, it hands the hold over
  # (QUIET -> HELD, then kicks the ticker) and runs it, and the task may
  # block until that held completion's callback ran. Two producers (2 and 1
  # completions, no dispatch without readiness: 2 x 2 is 259 million states)
  # and one producer with 3. Each broken variant loses a wakeup: no release
  # on running dry (NO_RELEASE), the hold kept across the task, the design
  # before the ticker (NO_TICKER), a hand-over with no kick (NO_KICK), a
  # ticker that looks at pending only before announcing its sleep
  # (TICKER_NO_RECHECK), a stop that wakes the ticker but leaves asleep set
  # (STOP_WAKE_ONLY: the join hangs).
  "port-coalesce|port.pml|-DNP=2 -DK=2 -DKLAST=1 -DFREE=0 -DCOALESCE|-DSAFETY|-m100000|pass"
  "port-coalesce-1p3t|port.pml|-DNP=1 -DK=3 -DCOALESCE|-DSAFETY|-m100000|pass"
  "port-norelease|port.pml|-DCOALESCE -DNO_RELEASE|-DSAFETY|-m100000|assertion violated \(\(head==0\)&&\(ready==0\)\)"
  "port-noticker|port.pml|-DCOALESCE -DNO_TICKER|-DSAFETY|-m100000|assertion violated \(\(head==0\)&&\(ready==0\)\)"
  "port-nokick|port.pml|-DCOALESCE -DNO_KICK|-DSAFETY|-m100000|assertion violated \(\(head==0\)&&\(ready==0\)\)"
  "port-tickernorecheck|port.pml|-DCOALESCE -DTICKER_NO_RECHECK -DNP=1 -DK=2|-DSAFETY|-m100000|assertion violated \(\(head==0\)&&\(ready==0\)\)"
  "port-stopwake|port.pml|-DCOALESCE -DSTOP_WAKE_ONLY|-DSAFETY|-m100000|invalid end state"
  # port_life.pml: wpool_port_destroy (CLOSING with the count in one RMW,
  # the count - completed check, the wait for posters, close, DEAD) racing
  # submitters (counted with one CAS, refunded when refused after it) and
  # the posts of their accepted tasks (by a worker, announced in its guard,
  # or by a canceller, counted in posting). The 0.2 code (BROKEN: check
  # DEAD, count later; no CLOSING, no wait) fails two ways: pan's default
  # search order finds the eventfd written after close first, the reversed
  # process order (pan -DREVERSE) the lost completion. A destroy that does
  # not wait for posters (NO_QUIESCE), or not for the workers' guards
  # (NO_GUARDS), a refund not counted in posting (BARE_REFUND) or counted
  # only after its decrement (LATE_POSTING), and a guard raised only after
  # the push (LATE_GUARD) write on the closed eventfd. ASSERT_WAKE is no bug: it shows that a poster's
  # futex wake may come after destroy returned, which the C code must
  # allow for.
  "port_life|port_life.pml|-DNS=2 -DK=1|-DSAFETY|-m100000|pass"
  "port_life-1s2t|port_life.pml|-DNS=1 -DK=2|-DSAFETY|-m100000|pass"
  "port_life-2s2t|port_life.pml|-DNS=2 -DK=2|-DSAFETY|-m100000|pass"
  "port_life-broken|port_life.pml|-DBROKEN|-DSAFETY|-m100000|assertion violated efd_open"
  "port_life-broken-lost|port_life.pml|-DBROKEN|-DSAFETY -DREVERSE|-m100000|assertion violated \(\(\(accepted==completed\)"
  "port_life-noquiesce|port_life.pml|-DNO_QUIESCE|-DSAFETY|-m100000|assertion violated efd_open"
  "port_life-noguards|port_life.pml|-DNO_GUARDS|-DSAFETY|-m100000|assertion violated efd_open"
  "port_life-barerefund|port_life.pml|-DBARE_REFUND|-DSAFETY|-m100000|assertion violated efd_open"
  "port_life-lateposting|port_life.pml|-DLATE_POSTING|-DSAFETY|-m100000|assertion violated efd_open"
  "port_life-lateguard|port_life.pml|-DLATE_GUARD|-DSAFETY|-m100000|assertion violated efd_open"
  "port_life-latewake|port_life.pml|-DASSERT_WAKE|-DSAFETY|-m100000|assertion violated +!\(destroyed\)"
  # room.pml: backpressure with max_queue and the drain notification (the
  # refusal flag against the backlog, a Dekker pair). No lost drain, at most
  # one notification per refusal, with max_queue 1 (low water 0) and
  # max_queue 0 (low water -1, "a worker is free"), one and two workers.
  # ROOM_FIRST (workers look at the flag before they make room) and
  # LEVEL_FIRST (the refused submitter reads the level before it raises the
  # flag) must lose a drain. With a low-water mark of 0 or more the next
  # task's own look covers ROOM_FIRST's loss, so it is shown with max_queue 0.
  "room|room.pml|-DNS=2 -DK=2 -DNW=1|-DSAFETY|-m200000|pass"
  "room-2w|room.pml|-DNS=2 -DK=2 -DNW=2|-DSAFETY|-m200000|pass"
  "room-zero|room.pml|-DMAXQ=0 -DLOW=-1|-DSAFETY|-m200000|pass"
  "room-zero-2w|room.pml|-DMAXQ=0 -DLOW=-1 -DNW=2|-DSAFETY|-m200000|pass"
  "room-roomfirst|room.pml|-DROOM_FIRST -DMAXQ=0 -DLOW=-1|-DSAFETY|-m200000|assertion violated"
  "room-levelfirst|room.pml|-DLEVEL_FIRST|-DSAFETY|-m200000|assertion violated"
  # overflow.pml: a lane's ring and its overflow list, with the move back to
  # the ring. Tasks taken in the order submitted, each once, none left behind
  # at close (also a close racing the submits), one and two workers. NO_FIFO
  # (a submit ignores a non-empty overflow) and NO_RING_CHECK (a worker takes
  # the overflow's head without looking at the ring again under the lock)
  # break the order; COUNT_FIRST (the count lowered before the move) lets a
  # worker exit with a task still waiting.
  "overflow|overflow.pml|-DNW=1|-DSAFETY|-m200000|pass"
  "overflow-2w|overflow.pml|-DNW=2|-DSAFETY|-m200000|pass"
  "overflow-close|overflow.pml|-DNW=2 -DEARLY_CLOSE -DK=5 -DC=2|-DSAFETY|-m200000|pass"
  "overflow-nofifo|overflow.pml|-DNO_FIFO|-DSAFETY|-m200000|assertion violated \(id>last\)"
  "overflow-noringcheck|overflow.pml|-DNO_RING_CHECK|-DSAFETY|-m200000|assertion violated \(id>last\)"
  "overflow-countfirst|overflow.pml|-DCOUNT_FIRST -DNW=2|-DSAFETY|-m200000|invalid end state"
  # defer.pml: a work function returns WPOOL_PENDING after handing its task
  # to two racing completers (with SELF it also completes it itself first);
  # destroy waits for the pending count. One post, with the one successful
  # caller's status. PLAIN_PEND (the worker stores PENDING instead of its
  # CAS) loses a completion made while the work ran; DEC_BEFORE_POST (the
  # count lowered before the post) lets destroy free the pool under a post.
  "defer|defer.pml|-DNC=2|-DSAFETY|-m100000|pass"
  "defer-self|defer.pml|-DSELF|-DSAFETY|-m100000|pass"
  "defer-plainpend|defer.pml|-DPLAIN_PEND|-DSAFETY|-m100000|assertion violated .*posted==1"
  "defer-decbeforepost|defer.pml|-DDEC_BEFORE_POST|-DSAFETY|-m100000|assertion violated +!\(freed\)"
  # strand.pml: one strand's submits (idle: queued as its head under the
  # lock; busy: counted, the close checked, appended), releases by the
  # workers, a canceller and (PEND) a completer, a close at any moment, the
  # workers' exit test. No overlap, acceptance order, each accepted task
  # posted once, workers exit. One worker with 3 tasks; two workers with 2
  # tasks, and with 3 tasks when the canceller takes task 2 (all choices
  # with 3 tasks and 2 workers are 77 million states). Broken: CHECK_FIRST,
  # COUNT_FIRST, RING_FIRST, IGNORE_COUNT lose a task at close; BUSY_EARLY
  # lets two tasks overlap; HEAD_UNLOCKED breaks the order; NO_RELEASE
  # strands the waiting tasks; NO_RETRY answers "not queued" for a task that
  # moved from the strand's list into the ring, SLOT_GAP for one caught
  # between the list and the ring (the review's finding).
  "strand|strand.pml|-DNW=1|-DSAFETY|-m200000|pass"
  "strand-2w|strand.pml|-DNT=2|-DSAFETY|-m200000|pass"
  "strand-2w3t|strand.pml|-DCT=2|-DSAFETY|-m200000|pass"
  "strand-pend|strand.pml|-DNW=1 -DPEND|-DSAFETY|-m200000|pass"
  "strand-pend-2w|strand.pml|-DNT=2 -DPEND|-DSAFETY|-m200000|pass"
  "strand-checkfirst|strand.pml|-DCHECK_FIRST -DPEND|-DSAFETY|-m200000|assertion violated \(\(\(rank\[t\]==0\)"
  "strand-countfirst|strand.pml|-DCOUNT_FIRST -DPEND|-DSAFETY|-m200000|assertion violated \(\(\(rank\[t\]==0\)"
  "strand-ringfirst|strand.pml|-DRING_FIRST -DPEND|-DSAFETY|-m200000|assertion violated \(\(\(rank\[t\]==0\)"
  "strand-ignorecount|strand.pml|-DIGNORE_COUNT -DPEND|-DSAFETY|-m200000|assertion violated \(\(\(rank\[t\]==0\)"
  "strand-busyearly|strand.pml|-DBUSY_EARLY|-DSAFETY|-m200000|assertion violated \(inside==0\)"
  "strand-headunlocked|strand.pml|-DHEAD_UNLOCKED|-DSAFETY|-m200000|assertion violated \(rank\[t\]>last\)"
  "strand-norelease|strand.pml|-DNO_RELEASE|-DSAFETY -DP_REVERSE|-m200000|assertion violated .*busy"
  "strand-noretry|strand.pml|-DNO_RETRY|-DSAFETY|-m200000|assertion violated .*cancel_missed"
  "strand-slotgap|strand.pml|-DSLOT_GAP -DNW=1|-DSAFETY|-m200000|assertion violated .*cancel_missed"
  # classcap.pml: a class capped at 1 (2 tasks) and an uncapped one (1
  # task), each with its own submitter; two general workers, or (RESERVED)
  # one reserved for the capped class, with its home park, and one general;
  # wp_next_task as worker.c has it. The cap is never exceeded, no task
  # waits with a free place while a worker that could take it sleeps, each
  # task runs once. A worker whose re-check found a task and whose node
  # was claimed calls wp_pass_on after its cancel; without it
  # (CANCEL_SAME_PARK: the cancel's own pass-on, on the home park only) a
  # reserved worker loses the wake: with a cap of 2 and no lending (LEND=2),
  # and when its lend time comes just before its re-check. NO_CHAIN (no
  # wp_pass_on after a wait) strands a task with a
  # reserved worker: its G wake is spent on a home task, the home task's
  # wake on H. LEND=1 (lending may stop without a home task) strands one
  # too. Broken: no check after a failed take's release (NO_FAIL_NOTIFY) or
  # after a run's (NO_RUN_NOTIFY), a check-then-store claim
  # (CHECK_THEN_INC), a home-class submit with no fallback to G
  # (HOME_ONLY), a lending reserved worker's re-check taking only from its
  # class (RECHECK_HOME_ONLY). A failed take's check runs only if a claim
  # was turned away (turned, exchanged after the release); a claim turned
  # away sets turned, then loads running again: without that second load
  # (TURNED_NO_RELOAD) a release between its load and its store skips the
  # check; the exchange before the release (TURNED_LATE) loses it too.
  "classcap|classcap.pml||-DSAFETY|-m200000|pass"
  "classcap-reserved|classcap.pml|-DRESERVED|-DSAFETY|-m200000|pass"
  "classcap-capb|classcap.pml|-DCAPB=1|-DSAFETY|-m200000|pass"
  "classcap-reserved-cap2|classcap.pml|-DRESERVED -DCAPA=2 -DLEND=2|-DSAFETY -O0|-m200000|pass"
  "classcap-samepark|classcap.pml|-DRESERVED -DCANCEL_SAME_PARK|-DSAFETY -O0|-m200000|assertion violated +!\(lost_wakeup\)"
  "classcap-samepark-cap2|classcap.pml|-DRESERVED -DCAPA=2 -DLEND=2 -DCANCEL_SAME_PARK|-DSAFETY -O0|-m200000|assertion violated +!\(lost_wakeup\)"
  "classcap-nochain|classcap.pml|-DRESERVED -DNO_CHAIN|-DSAFETY -O0 -DP_REVERSE|-m200000|assertion violated +!\(lost_wakeup\)"
  "classcap-lendany|classcap.pml|-DRESERVED -DLEND=1|-DSAFETY -O0|-m200000|assertion violated +!\(lost_wakeup\)"
  "classcap-nofailnotify|classcap.pml|-DNO_FAIL_NOTIFY|-DSAFETY -O0|-m200000|assertion violated +!\(lost_wakeup\)"
  "classcap-turnednoreload|classcap.pml|-DTURNED_NO_RELOAD|-DSAFETY -O0|-m200000|assertion violated +!\(lost_wakeup\)"
  "classcap-turnedlate|classcap.pml|-DTURNED_LATE|-DSAFETY -O0|-m200000|assertion violated +!\(lost_wakeup\)"
  "classcap-norunnotify|classcap.pml|-DNO_RUN_NOTIFY|-DSAFETY -O0 -DP_REVERSE|-m200000|assertion violated +!\(lost_wakeup\)"
  "classcap-checktheninc|classcap.pml|-DCHECK_THEN_INC|-DSAFETY -O0|-m200000|assertion violated \(inside\["
  "classcap-homeonly|classcap.pml|-DRESERVED -DHOME_ONLY|-DSAFETY -O0|-m200000|assertion violated +!\(lost_wakeup\)"
  "classcap-recheckhomeonly|classcap.pml|-DRESERVED -DRECHECK_HOME_ONLY|-DSAFETY -O0|-m200000|assertion violated +!\(lost_wakeup\)"
  # start.pml: wp_ticker_start waits on a futex word the ticker sets once
  # it runs its own code. The creator returns, and only after the ticker's
  # set-up; a ticker that wakes before it stores loses the wake (WAKE_FIRST,
  # also with a spurious return allowed), a creator that does not wait
  # returns during the set-up (NO_WAIT).
  "start|start.pml||-DSAFETY -O0|-m10000|pass"
  "start-nospurious|start.pml|-DSPURIOUS=0|-DSAFETY -O0|-m10000|pass"
  "start-wakefirst|start.pml|-DWAKE_FIRST|-DSAFETY -O0|-m10000|invalid end state"
  "start-nowait|start.pml|-DNO_WAIT|-DSAFETY -O0|-m10000|assertion violated +!\(setup\)"
)

run_check() { # index spec
    local i=$1 name model defs ccflags runflags expect
    IFS='|' read -r name model defs ccflags runflags expect <<<"$2"
    local dir="$work/$i-$name" out res
    mkdir -p "$dir"
    cp "$root/tests/model/$model" "$dir/"
    res="$dir/result"
    local t0=$SECONDS
    # shellcheck disable=SC2086 # flag lists are split on purpose
    if ! (cd "$dir" && "$spin" $defs -a "$model" >spin.log 2>&1 &&
          "$cc" -O2 -w -DSFH $ccflags -DCOLLAPSE -DMEMLIM=4096 -o pan pan.c >cc.log 2>&1); then
        echo "FAIL $name: spin/cc failed: $(tail -n 3 "$dir/spin.log" "$dir/cc.log" | tr '\n' ' ')" >"$res"
        return
    fi
    # shellcheck disable=SC2086
    (cd "$dir" && ./pan $runflags >pan.log 2>&1) || true
    out="$dir/pan.log"
    local secs=$((SECONDS - t0))
    local errors states first
    errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$out" | tail -n 1)
    states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' "$out" | tail -n 1)
    first=$(grep -m 1 -E '^pan:[0-9]+: ' "$out" | sed 's/^pan:[0-9]*: //' || true)
    local info="[$defs] ${states:-?} states, ${secs}s"
    if grep -qE 'max search depth too small|out of memory|Search not completed' "$out" &&
       [ "$expect" = pass ]; then
        echo "FAIL $name: search incomplete $info" >"$res"
    elif [ -z "$errors" ]; then
        echo "FAIL $name: no result from pan: $(tail -n 2 "$out" | tr '\n' ' ')" >"$res"
    elif [ "$expect" = pass ]; then
        if [ "$errors" = 0 ]; then
            echo "PASS $name: verified, 0 errors, $info" >"$res"
        else
            echo "FAIL $name: $errors error(s): $first $info" >"$res"
        fi
    else
        if [ "$errors" != 0 ] && grep -qE "$expect" <<<"$first"; then
            echo "PASS $name: counterexample found as expected: $first $info" >"$res"
        elif [ "$errors" != 0 ]; then
            echo "FAIL $name: unexpected error: $first $info" >"$res"
        else
            echo "FAIL $name: broken variant verified (the model is vacuous) $info" >"$res"
        fi
    fi
}

# The longest searches start first, so that no long one is left running
# alone at the end while the other job has nothing to do.
heavy=" park classcap-reserved classcap-capb port_life-2s2t park-space "
order=()
for i in "${!checks[@]}"; do
    case $heavy in *" ${checks[$i]%%|*} "*) order+=("$i") ;; esac
done
for i in "${!checks[@]}"; do
    case $heavy in *" ${checks[$i]%%|*} "*) ;; *) order+=("$i") ;; esac
done

start=$SECONDS
for i in "${order[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
        wait -n || true
    done
    run_check "$i" "${checks[$i]}" &
done
wait

status=0
for i in "${!checks[@]}"; do
    name=${checks[$i]%%|*}
    line=$(cat "$work/$i-$name/result" 2>/dev/null || echo "FAIL $name: no result")
    echo "$line"
    case $line in PASS*) ;; *) status=1 ;; esac
done
echo "model checks: $([ $status = 0 ] && echo ok || echo FAILED) in $((SECONDS - start))s ($("$spin" -V | head -n 1))"
exit $status

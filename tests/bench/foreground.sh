#!/usr/bin/env bash
# What a busy worker costs the laptop's own programs: a CPU-bound foreground program (nice 0,
# one thread) counts for a second beside a worker whose every slot computes pi (one slot per
# core), then for a second alone (the worker stopped with SIGSTOP meanwhile), ROUNDS times.
# Printed: the share of the time it wanted a CPU that it got (its schedstat: what the
# scheduler, and so the worker's priority, decides), and its speed beside as a share of its
# speed alone (the median: rounds interleave because a virtual machine's own speed drifts from
# second to second, by more than the worker takes).
#
# Usage: tests/bench/foreground.sh [MARMOTD] [NICE]
#   MARMOTD: the worker's binary (default: this tree's release build); pass an older build to
#            compare with it. NICE: start the worker under `nice -n NICE` (as the unit's
#            `Nice=10` did before `CPUWeight=idle`).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet --bin marmotd --bin marmotctl
bin=target/release
worker_bin=${1:-$bin/marmotd}
nice=${2:-0}
rounds=${ROUNDS:-15}
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$dir"' EXIT
sock=$dir/marmotd.sock
ctl() { $bin/marmotctl --socket "$sock" "$@"; }
# Counts iterations of a tight loop for a second of wall time, and prints the count, then the
# nanoseconds it ran and the nanoseconds it waited for a CPU while it could run (its
# schedstat): the first moves with the virtual machine's own speed from second to second, the
# other two are what the scheduler gave it.
count() {
    /usr/bin/python3 -c "
import time
def stat(): return [int(x) for x in open('/proc/self/schedstat').read().split()[:2]]
ran, waited = stat()
end, n = time.monotonic() + 1, 0
while time.monotonic() < end:
    for _ in range(10000): pass
    n += 1
ran2, waited2 = stat()
print(n, ran2 - ran, waited2 - waited)"
}

$bin/marmotd coordinator --listen 127.0.0.1:0 --state-dir "$dir/state" --socket "$sock" \
    2>"$dir/coordinator.log" &
until ctl status >/dev/null 2>&1; do sleep 0.05; done
addr=$(ctl --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["listen"])')
slots=$(nproc)
nice -n "$nice" "$worker_bin" worker --coordinator "$addr" --token "$(ctl join-token)" \
    --name w --slots "$slots" --state-dir "$dir/w" 2>"$dir/w.log" &
worker=$!
until [ "$(ctl --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["workers"])')" = 1 ]; do sleep 0.05; done

job=$(ctl run pi 1e13 --detach)
busy() { ctl --json workers | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["slots_busy"])'; }
until [ "$(busy)" = "$slots" ]; do sleep 0.05; done
beside=() alone=()
for _ in $(seq "$rounds"); do
    beside+=("$(count)")
    kill -STOP "$worker"
    alone+=("$(count)")
    kill -CONT "$worker"
done
ctl cancel "$job" >/dev/null
python3 - "$worker_bin" "$nice" "$slots" "$rounds" "${beside[*]}" "${alone[*]}" <<'PY'
import statistics, sys
worker, nice, slots, rounds, beside, alone = sys.argv[1:]
def rows(s):
    v = [int(x) for x in s.split()]
    return [v[i:i + 3] for i in range(0, len(v), 3)]
beside, alone = rows(beside), rows(alone)
speed = sorted(b[0] / a[0] for b, a in zip(beside, alone))
def share(rows): return sum(r[1] for r in rows) / sum(r[1] + r[2] for r in rows)
print(f"worker {worker} (nice {nice}, {slots} slots busy), {rounds} rounds:")
print(f"  CPU time the foreground program got while it wanted it: {share(beside):.4f} beside the worker, "
      f"{share(alone):.4f} alone")
print(f"  its speed beside as a share of alone: median {statistics.median(speed):.3f} "
      f"(range {speed[0]:.3f} to {speed[-1]:.3f}: the machine's own speed drifts)")
PY

#!/usr/bin/env bash
# How long a job stalls when a worker dies mid-chunk: from the SIGKILL to the coordinator
# declaring the worker lost and queueing its chunks again (they start on the next free slot).
#
# Usage: tests/bench/failover.sh [DEAD_AFTER]    (default 5s; release binaries)
set -euo pipefail
cd "$(dirname "$0")/../.."
dead_after=${1:-5s}
cargo build --release --quiet --bin marmotd --bin marmotctl
bin=target/release
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
sock=$dir/marmotd.sock

RUST_LOG=info $bin/marmotd coordinator --listen 127.0.0.1:0 --state-dir "$dir/state" \
    --socket "$sock" --dead-after "$dead_after" 2>"$dir/coordinator.log" &
until $bin/marmotctl --socket "$sock" status >/dev/null 2>&1; do sleep 0.05; done
addr=$($bin/marmotctl --socket "$sock" --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["listen"])')
token=$($bin/marmotctl --socket "$sock" join-token)
for w in a b victim; do
    $bin/marmotd worker --coordinator "$addr" --token "$token" --name $w --slots 1 \
        --state-dir "$dir/$w" --dead-after "$dead_after" 2>"$dir/$w.log" &
    eval "pid_$w=$!"
done
until [ "$($bin/marmotctl --socket "$sock" --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["workers"])')" = 3 ]; do sleep 0.05; done

job=$($bin/marmotctl --socket "$sock" run pi 1e11 --detach)
busy() { $bin/marmotctl --socket "$sock" --json workers | python3 -c 'import json,sys; print(next(w["slots_busy"] for w in json.load(sys.stdin) if w["name"]=="victim"))'; }
until [ "$(busy)" = 1 ]; do sleep 0.02; done
killed=$(date +%s.%N)
{ kill -9 "$pid_victim"; wait "$pid_victim"; } 2>/dev/null || true
until grep -q "worker 'victim' left" "$dir/coordinator.log"; do sleep 0.02; done
lost=$(date +%s.%N)
$bin/marmotctl --socket "$sock" cancel "$job" >/dev/null
python3 -c "print(f'dead-after $dead_after: stall from SIGKILL to chunks requeued: {$lost - $killed:.2f} s')"

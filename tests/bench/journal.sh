#!/usr/bin/env bash
# The journal's costs and figures on one build: tiny-job throughput by 32 concurrent clients
# and the single-client round trip; the journal's size after 100,000 tiny jobs and after
# pruning; the time from a coordinator restarted after `kill -9` to its resumed job running
# on every worker again. A coordinator and two 1-slot workers, separate processes, in a temp dir.
#
# Usage: tests/bench/journal.sh BIN_DIR [TINY_LOAD]   (BIN_DIR holds release marmotd and
# marmotctl; TINY_LOAD is tests/src/bin/tiny-load.rs built, default target/release/tiny-load).
# With an older build (no journal) only the throughput lines mean anything.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(realpath "$1")
load=$(realpath "${2:-target/release/tiny-load}")
source tests/bench/coordinator.sh
for w in a b; do
    start_worker $w
done
until [ "$(workers_connected)" = 2 ]; do sleep 0.05; done

echo "throughput: $("$load" "$sock" 32 20000)"
echo "round trip: $(MARMOT_SOCKET=$sock python3 tests/bench/tiny_jobs.py 2000)"
[ -e "$dir/state/journal.sqlite" ] || exit 0

"$load" "$sock" 32 100000 >/dev/null
size() { du -cb "$dir"/state/journal.sqlite* | tail -1 | cut -f1; }
echo "journal after $(ctl --json jobs --all | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))') kept jobs (120,000 run): $(size) bytes"
kill "$coordinator"; wait "$coordinator" 2>/dev/null || true
echo "journal after a clean stop: $(size) bytes"
start_coordinator --keep-results 1s --keep-results-count 1000
echo "journal after pruning to 1,000 jobs: $(size) bytes"

# Restart to resumed: a long job running on both workers, the coordinator killed, restarted.
ctl run pi 1e12 --detach >/dev/null
busy() { ctl --json status 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["slots_busy"])' 2>/dev/null || echo 0; }
until [ "$(busy)" = 2 ]; do sleep 0.01; done
sleep 1
kill -9 "$coordinator"; wait "$coordinator" 2>/dev/null || true
t0=$(date +%s.%N)
start_coordinator
t_socket=$(date +%s.%N)
until [ "$(busy)" = 2 ]; do sleep 0.005; done
t1=$(date +%s.%N)
python3 -c "print(f'restart to resumed on both workers: {$t1-$t0:.3f} s (socket up after {$t_socket-$t0:.3f} s)')"
ctl cancel "$(ctl --json jobs | python3 -c 'import json,sys; print([j["id"] for j in json.load(sys.stdin) if j["state"]=="running"][0])')" >/dev/null

# The same for a command job: units of 5 s on both workers, its marmotctl attached.
ctl run cmd -- sleep 5 ::: $(seq 40) >/dev/null 2>&1 &
attached=$!
until [ "$(busy)" = 2 ]; do sleep 0.01; done
sleep 1
kill -9 "$coordinator"; wait "$coordinator" 2>/dev/null || true
t0=$(date +%s.%N)
start_coordinator
until [ "$(busy)" = 2 ]; do sleep 0.005; done
t1=$(date +%s.%N)
python3 -c "print(f'restart to a command job running on both workers: {$t1-$t0:.3f} s')"
kill "$attached"

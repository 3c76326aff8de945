#!/usr/bin/env bash
# What hostile peers cost a running cluster (release binaries, two local workers):
# - a pi job's wall time alone, and while a peer without a token keeps opening connections
#   (tests/src/bin/hostile-flood.rs, 1,000 per round), with the coordinator's peak memory;
# - the cost of verification: the same job with --verify 0, the default 0.02, and 1.
#
# Usage: tests/bench/hostile.sh [SAMPLES]    (default 2e10)
set -euo pipefail
cd "$(dirname "$0")/../.."
samples=${1:-2e10}
cargo build --release --quiet --bin marmotd --bin marmotctl -p marmotd -p marmotctl
cargo build --release --quiet -p marmot-tests --bin hostile-flood
bin=target/release
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
sock=$dir/marmotd.sock
ctl() { $bin/marmotctl --socket "$sock" "$@"; }

$bin/marmotd coordinator --listen 127.0.0.1:0 --state-dir "$dir/state" --socket "$sock" \
    2>"$dir/coordinator.log" &
coordinator=$!
until ctl status >/dev/null 2>&1; do sleep 0.05; done
addr=$(ctl --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["listen"])')
token=$(ctl join-token)
for w in a b; do
    $bin/marmotd worker --coordinator "$addr" --token "$token" --name $w --slots 1 \
        --state-dir "$dir/$w" 2>"$dir/$w.log" &
done
until [ "$(ctl --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["workers"])')" = 2 ]; do sleep 0.05; done

run() { # prints the job's wall time in seconds
    ctl --json run pi "$samples" --seed 1 "$@" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seconds"])'
}
rss() { awk '/^VmRSS/ {print $2/1024 " MB"}' "/proc/$coordinator/status"; }
hwm() { awk '/^VmHWM/ {print $2/1024 " MB"}' "/proc/$coordinator/status"; }
cpu() { # the coordinator's CPU seconds so far (user + system)
    awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$coordinator/stat"
}

run >/dev/null # warm up
echo "memory before: $(rss)"
c0=$(cpu); quiet=$(run --verify 0); c1=$(cpu)
$bin/hostile-flood "$addr" "$token" 1000 >/dev/null
flood() { while true; do $bin/hostile-flood "$addr" "$token" 1000 >>"$dir/flood.log"; done; }
flood & flooder=$!
c2=$(cpu); flooded=$(run --verify 0); c3=$(cpu)
kill $flooder 2>/dev/null; wait $flooder 2>/dev/null || true
echo "pi $samples, 2 workers: ${quiet} s alone, ${flooded} s under a connection flood"
python3 -c "print(f'slowdown under the flood: {($flooded / $quiet - 1) * 100:+.1f}% (the flooding client shares the same cores)')"
python3 -c "print(f'coordinator CPU: {$c1 - $c0:.2f} s during the quiet run, {$c3 - $c2:.2f} s during the flooded one')"
echo "flood rounds: $(wc -l <"$dir/flood.log") of 1,000 connections, e.g. $(tail -1 "$dir/flood.log")"
echo "memory after: $(rss), peak $(hwm)"
for v in 0 0.02 1; do
    echo "verify $v: $(run --verify $v) s"
done

#!/usr/bin/env bash
# marmot across a WAN, side by side with loopback: `run pi 2e9` on two 1-slot workers, `ping`,
# and `marmotctl update` of the release binary to one worker, through `wan-relay` (100 ms of
# round trip, without and with 1% loss each way); and for the LAN, an update of four loopback
# workers. A coordinator and workers as separate processes, state in a temp dir.
#
# Usage: [SAMPLES=2e9] tests/bench/wan.sh BIN_DIR [ROUNDS] [pi|update|lan|all]   (BIN_DIR holds release marmotd, marmotctl and
# wan-relay: `cargo build --release --bin marmotd --bin marmotctl --bin wan-relay`).
set -euo pipefail
bin=$(realpath "$1")
rounds=${2:-3}
only=${3:-all} # pi, update, lan or all
samples=${SAMPLES:-2e9} # for pi
source "$(dirname "$0")/coordinator.sh"
wants() { [ "$only" = all ] || [ "$only" = "$1" ]; } # PART: whether this run measures it

workers=()
start_workers() { # ADDR NAME... : one-slot workers dialling ADDR, each running its own copy
    local addr=$1; shift
    for w in "$@"; do
        mkdir -p "$dir/$w"
        cp "$bin/marmotd" "$dir/$w/marmotd"
        MARMOT_TOKEN=$token "$dir/$w/marmotd" worker --coordinator "$addr" --name "$w" --slots 1 \
            --state-dir "$dir/$w/state" >>"$dir/$w.log" 2>&1 &
        workers+=($!)
    done
    until [ "$(workers_connected)" = $# ]; do sleep 0.05; done
}
stop_workers() {
    kill "${workers[@]}" 2>/dev/null || true
    wait "${workers[@]}" 2>/dev/null || true
    workers=()
    until [ "$(workers_connected)" = 0 ]; do sleep 0.05; done
}
link() { # LINK (loopback, 100ms or 100ms+1%): the address workers dial for it in $addr
    local out rtt loss
    case $1 in
        loopback) addr=127.0.0.1:$port; return ;;
        100ms) rtt=100 loss=0 ;;
        100ms+1%) rtt=100 loss=0.01 ;;
    esac
    out=$(mktemp -p "$dir" relay.XXXX)
    "$bin/wan-relay" "127.0.0.1:$port" "$rtt" "$loss" </dev/null >"$out" &
    until [ -s "$out" ]; do sleep 0.01; done
    addr=$(head -1 "$out")
}

declare -A pi
wants pi && for link in "loopback" "100ms" "100ms+1%"; do
    link "$link"
    start_workers "$addr" a b
    ctl run pi 2e8 >/dev/null # warm-up: connections, first chunks
    times=()
    for round in $(seq "$rounds"); do times+=("$(seconds ctl run pi "$samples")"); done
    pi[$link]=$(printf '%s\n' "${times[@]}" | sort -n | head -1)
    ping=$(seconds ctl ping --timeout 2s)
    printf 'pi %s, %s: %s s (best of %s: %s); ping %.2f s\n' "$samples" "$link" "${pi[$link]}" "$rounds" \
        "${times[*]}" "$ping"
    stop_workers
done
wants pi && for link in "100ms" "100ms+1%"; do
    printf 'pi %s, %s / loopback: %.2f\n' "$samples" "$link" "$(echo "${pi[$link]} / ${pi[loopback]}" | bc -l)"
done

# An update of one worker: a new build (the release binary with bytes appended).
wants update && for link in "loopback" "100ms" "100ms+1%"; do
    link "$link"
    start_workers "$addr" u
    new=$dir/new-$RANDOM
    cp "$bin/marmotd" "$new"
    head -c 64 /dev/urandom >>"$new"
    size=$(stat -c %s "$new")
    start=$(date +%s.%N)
    rate=$(ctl --json update "$new" | python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes_per_second"] / 1e6)')
    t=$(echo "$(date +%s.%N) - $start" | bc)
    printf 'update of %s bytes to one worker, %s: %.1f s (%.2f MB/s), the transfer at %.2f MB/s\n' \
        "$size" "$link" "$t" "$(echo "$size / $t / 1000000" | bc -l)" "$rate"
    stop_workers
done

# The LAN figure beside them: an update of four loopback workers (a rollout takes them one at a
# time), best of ROUNDS.
wants lan || exit 0
link loopback
start_workers "$addr" l1 l2 l3 l4
times=()
for round in $(seq "$rounds"); do
    new=$dir/new-$RANDOM
    cp "$bin/marmotd" "$new"
    head -c 64 /dev/urandom >>"$new"
    times+=("$(seconds ctl update "$new" 2>/dev/null)")
    until [ "$(workers_connected)" = 4 ]; do sleep 0.05; done
done
printf 'update of 4 loopback workers: %s s (best of %s: %s)\n' \
    "$(printf '%s\n' "${times[@]}" | sort -n | head -1)" "$rounds" "${times[*]}"

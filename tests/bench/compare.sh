#!/usr/bin/env bash
# Performance of two builds side by side, in one sitting: `run pi 1e10`, `run pi 1e9`, the
# tiny-job round trip (1,000 sequential 1-sample pi jobs over one keep-alive connection),
# tiny-job throughput (20,000 by 32 concurrent clients, with target/release/tiny-load when it
# is built: `cargo build --release -p marmot-tests --bin tiny-load`, or TINY_LOAD=PATH) and
# `true` x 5,000 through `run cmd` (units per second), each on a fresh
# `marmotd local --workers 2`, builds alternating so drift hits both alike.
#
# Usage: tests/bench/compare.sh BEFORE_DIR AFTER_DIR [ROUNDS]   (dirs holding marmotd and
# marmotctl release binaries; default 3 rounds). The scheduler bench is `cargo bench -p
# marmotd --bench scheduler`, run once per checkout.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${3:-3}
one() { # BIN_DIR LABEL
    local bin=$1 label=$2 dir
    dir=$(mktemp -d)
    "$bin/marmotd" local --workers 2 >"$dir/local.log" 2>&1 &
    local pid=$!
    local sock=""
    for _ in $(seq 200); do
        sock=$(sed -n 's/^control socket: //p' "$dir/local.log")
        [ -n "$sock" ] && "$bin/marmotctl" --socket "$sock" status >/dev/null 2>&1 && break
        sleep 0.05
    done
    t() { local s e; s=$(date +%s.%N); "$bin/marmotctl" --socket "$sock" run pi "$1" >/dev/null; e=$(date +%s.%N); python3 -c "print(f'{$e-$s:.3f}')"; }
    local big small tiny cmd
    big=$(t 1e10); small=$(t 1e9)
    cmd=$(
        s=$(date +%s.%N)
        seq 5000 | "$bin/marmotctl" --socket "$sock" run cmd --inputs - -- true >/dev/null
        e=$(date +%s.%N)
        python3 -c "print(f'{5000 / ($e - $s):.0f}')"
    )
    tiny=$(MARMOT_SOCKET=$sock python3 tests/bench/tiny_jobs.py 1000 | grep -o 'median [0-9.]* ms' || true)
    local load=""
    local tiny_load=${TINY_LOAD:-target/release/tiny-load}
    if [ -x "$tiny_load" ]; then
        load=$("$tiny_load" "$sock" 32 20000 | grep -o '[0-9]* jobs/s' || true)
    fi
    echo "$label pi1e10 ${big}s pi1e9 ${small}s tiny $tiny load $load cmd-true ${cmd} units/s"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
}
for _ in $(seq "$rounds"); do
    one "$1" before
    one "$2" after
done

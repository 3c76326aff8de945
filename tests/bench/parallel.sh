#!/usr/bin/env bash
# `marmotctl parallel` side by side with GNU parallel -j2 and `marmotctl run cmd` on this
# machine: `seq N | parallel true` (the cost of a job: a line built, a unit run with bash on
# a worker, its output back), the same through `run cmd --inputs -` (no shell), and a job of
# a perl expression per argument. A coordinator and two 1-slot workers, separate processes,
# state in a temp dir.
#
# Usage: tests/bench/parallel.sh BIN_DIR [ROUNDS] [N]   (BIN_DIR holds marmotd and
# marmotctl; GNU parallel, bc and python3 must be installed).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(realpath "$1")
rounds=${2:-3}
n=${3:-2000}
source tests/bench/coordinator.sh
for w in a b; do
    start_worker $w
done
until [ "$(workers_connected)" = 2 ]; do sleep 0.05; done

rate() { echo "$n / $1" | bc -l; }
for round in $(seq "$rounds"); do
    g=$(seconds sh -c "seq $n | parallel -j2 true")
    m=$(seconds sh -c "seq $n | '$bin/marmotctl' --socket '$sock' parallel true")
    c=$(seconds sh -c "seq $n | '$bin/marmotctl' --socket '$sock' run cmd --inputs - -- true")
    printf 'seq %s | true, round %s: GNU parallel -j2 %.2f s (%.0f/s), marmotctl parallel %.2f s (%.0f/s), run cmd %.2f s (%.0f/s)\n' \
        "$n" "$round" "$g" "$(rate "$g")" "$m" "$(rate "$m")" "$c" "$(rate "$c")"
done
for round in $(seq "$rounds"); do
    g=$(seconds sh -c "seq $n | parallel -j2 echo '{= \$_ *= 2 =}'")
    m=$(seconds sh -c "seq $n | '$bin/marmotctl' --socket '$sock' parallel echo '{= \$_ *= 2 =}'")
    printf 'seq %s | echo {= $_ *= 2 =}, round %s: GNU parallel -j2 %.2f s, marmotctl parallel %.2f s\n' \
        "$n" "$round" "$g" "$m"
done
# The same lines, both tools (the perl expression's too).
diff <(seq "$n" | parallel -k -j2 echo '{= $_ *= 2 =}') \
    <(seq "$n" | "$bin/marmotctl" --socket "$sock" parallel -k echo '{= $_ *= 2 =}') >/dev/null &&
    echo "outputs identical"

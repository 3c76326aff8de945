#!/usr/bin/env bash
# `marmotctl parallel` side by side with GNU parallel -j2 and `marmotctl run cmd` on this
# machine: `seq N | parallel true` (the cost of a job: a line built, a unit run with bash on
# a worker, its output back), the same through `run cmd --inputs -` (no shell), a job of
# a perl expression per argument, and `parallel gzip -9 ::: *` over 40 files of 1-10 MB
# (marmot's time counts hashing, uploading, sending each file to its worker and the .gz
# coming back beside it), and `cat 1 GiB | parallel --pipe --block 10M wc -l`. A
# coordinator and two 1-slot workers, separate processes, state in a temp dir.
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

# Files travelling: gzip -9 over 40 files, each tool in its own copy (GNU parallel's gzip
# removes its originals; marmot's leave them and bring the .gz back beside them).
mkdir -p "$dir/logs"
python3 tests/bench/make_logs.py "$dir/logs" 40 7
echo "gzip input: $(du -sb "$dir/logs" | cut -f1) bytes in 40 files"
for round in $(seq "$rounds"); do
    rm -rf "$dir/gnu" "$dir/ours"
    cp -a "$dir/logs" "$dir/gnu"
    cp -a "$dir/logs" "$dir/ours"
    g=$(cd "$dir/gnu" && seconds parallel -j2 gzip -9 ::: *)
    m=$(cd "$dir/ours" && seconds "$bin/marmotctl" --socket "$sock" parallel gzip -9 ::: *)
    printf 'gzip -9 x40, round %s: GNU parallel -j2 %.2f s, marmotctl parallel %.2f s (marmot/GNU %.3f)\n' \
        "$round" "$g" "$m" "$(echo "$m / $g" | bc -l)"
done
for gz in "$dir"/gnu/*.gz; do
    cmp -s "$gz" "$dir/ours/$(basename "$gz")" || { echo "$(basename "$gz") differs!"; exit 1; }
done
echo "every .gz identical to GNU parallel's, beside its original"

# --pipe: 1 GiB of lines in blocks of 10 MB, counted per block.
python3 -c '
import sys
line = b"0123456789abcdef0123456789abcdef0123456789abcdef012345678\n"
block = line * 4096
for _ in range((1 << 30) // len(block)):
    sys.stdout.buffer.write(block)' >"$dir/gib"
for round in $(seq "$rounds"); do
    g=$(seconds sh -c "cat '$dir/gib' | parallel -j2 --pipe --block 10M wc -l")
    m=$(seconds sh -c "cat '$dir/gib' | '$bin/marmotctl' --socket '$sock' parallel --pipe --block 10M wc -l")
    printf 'cat 1 GiB | --pipe --block 10M wc -l, round %s: GNU parallel -j2 %.2f s, marmotctl parallel %.2f s\n' \
        "$round" "$g" "$m"
done
[ "$(cat "$dir/gib" | parallel -j2 --pipe --block 10M wc -l | paste -sd+ | bc)" = \
  "$(cat "$dir/gib" | "$bin/marmotctl" --socket "$sock" parallel --pipe --block 10M wc -l | paste -sd+ | bc)" ] &&
    echo "--pipe line counts identical"

#!/usr/bin/env bash
# `marmotctl run cmd` side by side with GNU parallel -j2 and xargs -P2 on this machine: `true`
# over 5,000 inputs; gzip -9 over 200 files of 1-10 MB, xz -6 over 20 (marmot's figures count
# hashing, uploading, the transfer to the workers and the results coming back); the peak memory of
# marmotctl and of the coordinator while 1 GiB of units' output goes through. A coordinator
# and two 1-slot workers, separate processes, state in a temp dir.
#
# Usage: tests/bench/commands.sh BIN_DIR [ROUNDS]   (BIN_DIR holds release marmotd and
# marmotctl; GNU parallel, xz, bc and python3 must be installed).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(realpath "$1")
rounds=${2:-3}
source tests/bench/coordinator.sh
for w in a b; do
    start_worker $w
done
until [ "$(workers_connected)" = 2 ]; do sleep 0.05; done

seq 5000 >"$dir/inputs"
for round in $(seq "$rounds"); do
    m=$(seconds ctl run cmd --inputs "$dir/inputs" -- true)
    p=$(seconds parallel -j2 true :::: "$dir/inputs")
    x=$(seconds xargs -P2 -n1 true <"$dir/inputs")
    printf 'true x5000, round %s: marmot %.2f s (%.0f units/s), GNU parallel %.2f s (%.0f/s), xargs %.2f s (%.0f/s)\n' \
        "$round" "$m" "$(echo "5000 / $m" | bc -l)" "$p" "$(echo "5000 / $p" | bc -l)" "$x" "$(echo "5000 / $x" | bc -l)"
done

mkdir -p "$dir/files" "$dir/gnu"
python3 tests/bench/make_logs.py "$dir/files"
echo "gzip input: $(du -sb "$dir/files" | cut -f1) bytes in 200 files"
# Round 1 is cold (every file hashed, uploaded, and sent to the worker that needs it); later
# rounds find them in the coordinator's store and, mostly, in the workers' caches.
for round in $(seq "$rounds"); do
    rm -rf "$dir/results" "$dir/gnu"/*
    m=$(seconds ctl run cmd --input-files "$dir/files/*" --results "$dir/results" -- \
        sh -c 'gzip -9 -n -c {} > "$MARMOT_OUT/{}.gz"')
    p=$(seconds parallel -j2 "gzip -9 -n -c {} > $dir/gnu/{/}.gz" ::: "$dir"/files/*)
    printf 'gzip -9 x200, round %s: marmot %.2f s, GNU parallel %.2f s (marmot/GNU %.3f)\n' \
        "$round" "$m" "$p" "$(echo "$m / $p" | bc -l)"
done
cmp "$dir/gnu/f007.log.gz" "$dir/results/8/f007.log.gz" && echo "gzip outputs identical"

# A CPU-heavier workload: xz -6 over 20 files (~120 MB, ~40 s on two cores), new files each
# round, so that every round counts the whole transfer. gzip -9 moves 38 MB per CPU second
# here, xz -6 under 2: the same transfer weighs 20 times less.
for round in $(seq "$rounds"); do
    rm -rf "$dir/xz" "$dir/results-xz" "$dir/gnu-xz"
    mkdir -p "$dir/xz" "$dir/gnu-xz"
    python3 tests/bench/make_logs.py "$dir/xz" 20 "1$round"
    m=$(seconds ctl run cmd --input-files "$dir/xz/*" --results "$dir/results-xz" -- \
        sh -c 'xz -6 -T1 -c {} > "$MARMOT_OUT/{}.xz"')
    p=$(seconds parallel -j2 "xz -6 -T1 -c {} > $dir/gnu-xz/{/}.xz" ::: "$dir"/xz/*)
    printf 'xz -6 x20 (%s MB, new), round %s: marmot %.2f s, GNU parallel %.2f s (marmot/GNU %.3f)\n' \
        "$(( $(du -sb "$dir/xz" | cut -f1) / 1000000 ))" "$round" "$m" "$p" "$(echo "$m / $p" | bc -l)"
    cmp -s "$dir/gnu-xz/f007.log.xz" "$dir/results-xz/8/f007.log.xz" || echo "xz outputs differ!"
done

# 1 GiB of output: 8 units of 128 MiB to stdout, marmotctl watched for peak resident memory.
peak() { grep VmHWM "/proc/$1/status" | awk '{print $2}'; }
"$bin/marmotctl" --socket "$sock" run cmd -- sh -c 'head -c 134217728 /dev/zero' \
    ::: 1 2 3 4 5 6 7 8 >/dev/null &
client=$!
client_peak=0
while kill -0 $client 2>/dev/null; do
    kb=$(peak $client 2>/dev/null || echo 0)
    [ "${kb:-0}" -gt "$client_peak" ] && client_peak=$kb
    sleep 0.01
done
echo "1 GiB of output: marmotctl peak ${client_peak} kB; peaks since start: coordinator $(peak $coordinator) kB, workers $(for w in $(pgrep -f "$dir/[ab]\$"); do printf '%s ' "$(peak $w)"; done)kB"

#!/usr/bin/env bash
# What moving the gzip benchmark's files costs marmot, in CPU seconds per process: the 200
# files (1.2 GB) of tests/bench/commands.sh through `marmotctl run cmd --input-files ... --
# true` on a fresh cluster (hashed and uploaded by marmotctl, stored by the coordinator, sent
# over QUIC to the worker that runs each unit, checked and cached there), then again with
# everything in place. Beside it, GNU parallel -j2 gzip -9 over the same files: on a machine
# whose cores gzip keeps busy, each CPU second marmot spends is half a second of wall time
# (2 cores), so this prints the lowest wall time marmot's gzip run could have.
#
# Usage: tests/bench/transfer.sh BIN_DIR   (release marmotd and marmotctl; GNU parallel).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(realpath "$1")
source tests/bench/coordinator.sh
workers=()
for w in a b; do
    start_worker $w
    workers+=($!)
done
until [ "$(workers_connected)" = 2 ]; do sleep 0.05; done
mkdir -p "$dir/files" "$dir/gnu"
python3 tests/bench/make_logs.py "$dir/files"

cpu() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; } # PID -> its CPU seconds so far
TIMEFORMAT='%3R %3U %3S'
gnu=$( { time parallel -j2 "gzip -9 -n -c {} > $dir/gnu/{/}.gz" ::: "$dir"/files/* ; } 2>&1 )
read -r gnu_wall gnu_user gnu_sys <<<"$gnu"
echo "GNU parallel -j2 gzip -9 x200: ${gnu_wall} s wall, $(echo "$gnu_user + $gnu_sys" | bc) CPU s"
for round in cold warm; do
    c0=$(cpu "$coordinator"); a0=$(cpu "${workers[0]}"); b0=$(cpu "${workers[1]}")
    ctl_time=$( { time ctl run cmd --input-files "$dir/files/*" -- true >/dev/null ; } 2>&1 )
    read -r wall ctl_user ctl_sys <<<"$ctl_time"
    ctl_cpu=$(echo "$ctl_user + $ctl_sys" | bc)
    coord=$(echo "$(cpu "$coordinator") - $c0" | bc)
    wa=$(echo "$(cpu "${workers[0]}") - $a0" | bc)
    wb=$(echo "$(cpu "${workers[1]}") - $b0" | bc)
    total=$(echo "$ctl_cpu + $coord + $wa + $wb" | bc)
    printf 'files moved (%s), `true` x200: %.2f s wall; CPU s: marmotctl %.2f, coordinator %.2f, workers %.2f + %.2f = %.2f\n' \
        "$round" "$wall" "$ctl_cpu" "$coord" "$wa" "$wb" "$total"
    printf '  gzip could end at best in %.2f s (GNU + all / 2: %.3fx), %.2f s counting the workers alone (%.3fx)\n' \
        "$(echo "$gnu_wall + $total / 2" | bc -l)" "$(echo "($gnu_wall + $total / 2) / $gnu_wall" | bc -l)" \
        "$(echo "$gnu_wall + ($wa + $wb) / 2" | bc -l)" "$(echo "($gnu_wall + ($wa + $wb) / 2) / $gnu_wall" | bc -l)"
done

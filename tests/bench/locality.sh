#!/usr/bin/env bash
# Files staying where they were sent: `gzip -9` over 200 files of 1-10 MB (tests/bench/make_logs.py)
# on a coordinator and two 1-slot workers, beside GNU parallel -j2 on the same cores. Round 1 is
# cold (every file hashed, uploaded and sent); round 2 runs over the same files again, round 3
# over them in reverse order. Each round says its time, GNU parallel's, and the bytes the
# coordinator sent its workers (`marmot_sent_bytes_total`) against the files' total.
#
# Usage: tests/bench/locality.sh BIN_DIR   (release marmotd and marmotctl; GNU parallel, bc,
# curl and python3 installed).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(realpath "$1")
source tests/bench/coordinator.sh
for w in a b; do
    start_worker $w
done
until [ "$(workers_connected)" = 2 ]; do sleep 0.05; done
sent() { curl -s --unix-socket "$sock" http://localhost/metrics | awk '/^marmot_sent_bytes_total /{print $2}'; }

mkdir -p "$dir/files" "$dir/gnu"
python3 tests/bench/make_logs.py "$dir/files"
total=$(du -sb "$dir/files" | cut -f1)
echo "gzip input: $total bytes in 200 files"
forward=("$dir"/files/*)
backward=()
for ((i = ${#forward[@]} - 1; i >= 0; i--)); do backward+=("${forward[i]}"); done
for round in cold again reversed; do
    case $round in reversed) files=("${backward[@]}") ;; *) files=("${forward[@]}") ;; esac
    rm -rf "$dir/results" "$dir/gnu"/*
    before=$(sent)
    m=$(seconds ctl run cmd --input-files "${files[@]}" --results "$dir/results" -- \
        sh -c 'gzip -9 -n -c {} > "$MARMOT_OUT/{}.gz"')
    bytes=$(( $(sent) - before ))
    p=$(seconds parallel -j2 "gzip -9 -n -c {} > $dir/gnu/{/}.gz" ::: "${files[@]}")
    printf 'gzip -9 x200, %s: marmot %.2f s, GNU parallel %.2f s (marmot/GNU %.3f); sent %s bytes (%.1f%% of the files)\n' \
        "$round" "$m" "$p" "$(echo "$m / $p" | bc -l)" "$bytes" "$(echo "100 * $bytes / $total" | bc -l)"
done

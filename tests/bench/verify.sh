#!/usr/bin/env bash
# The cost of spot checks: `pi 1e10` on two 1-slot workers (one per core of a 2-core
# machine) with `--verify 0` and with the default 2%, alternated RUNS times each. Prints each
# run's wall seconds, the medians, and the checks' cost in per cent.
#
# Usage: tests/bench/verify.sh BIN_DIR [RUNS]   (BIN_DIR holds release marmotd and marmotctl;
# bc, python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(realpath "$1")
runs=${2:-3}
source tests/bench/coordinator.sh
for w in a b; do
    start_worker $w
done
until [ "$(workers_connected)" = 2 ]; do sleep 0.05; done
ctl run pi 1e9 --verify 0 >/dev/null # warm: the workers' first chunks, the page cache
unchecked=() checked=()
for run in $(seq "$runs"); do
    unchecked+=("$(seconds ctl run pi 1e10 --seed "$run" --verify 0)")
    checked+=("$(seconds ctl run pi 1e10 --seed "$run" --verify 0.02)")
    echo "run $run: --verify 0 ${unchecked[-1]} s, --verify 0.02 ${checked[-1]} s"
done
python3 - "${unchecked[*]}" "${checked[*]}" <<'PY'
import statistics, sys
unchecked = statistics.median(map(float, sys.argv[1].split()))
checked = statistics.median(map(float, sys.argv[2].split()))
print(f"median: --verify 0 {unchecked:.2f} s, --verify 0.02 {checked:.2f} s: "
      f"checks cost {100 * (checked / unchecked - 1):+.1f}%")
PY

#!/usr/bin/env bash
# The dodging liar (tests/src/bin/hostile-member.rs, mode `dodge`: it lies only on the chunks
# that marmot's first, fixed-hash spot checks left unchecked) beside two honest 1-slot workers,
# at `--verify V`: JOBS jobs of pi 2e9 one after another. Prints how many ended with a wrong
# estimate, how many of those `marmotctl jobs` flags (a worker later caught lying), and
# whether the liar was caught. Not a timing: any build will do.
#
# Usage: tests/bench/liars.sh BIN_DIR [V] [JOBS]   (BIN_DIR holds marmotd, marmotctl and
# hostile-member, e.g. target/debug after `cargo test --workspace --no-run`; python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(realpath "$1")
verify=${2:-0.02}
jobs_to_run=${3:-20}
[ -x "$bin/hostile-member" ] || { echo "no $bin/hostile-member: build the tests first" >&2; exit 2; }
source tests/bench/coordinator.sh
for w in a b; do
    start_worker $w
done
"$bin/hostile-member" "127.0.0.1:$port" "$token" dodger 2 dodge "$dir/dodger" 2>"$dir/dodger.log" &
until [ "$(workers_connected)" = 3 ]; do sleep 0.05; done
for seed in $(seq "$jobs_to_run"); do
    ctl --json run pi 2e9 --seed "$seed" --verify "$verify" >/dev/null || true
done
ctl --json jobs --all >"$dir/jobs.json"
ctl --json workers >"$dir/workers.json"
python3 - "$dir/jobs.json" "$dir/workers.json" "$verify" <<'PY'
import json, math, sys
jobs = json.load(open(sys.argv[1]))
workers = json.load(open(sys.argv[2]))
verify = float(sys.argv[3])
done = [j for j in jobs if j.get("result")]
wrong = [j for j in done if abs(j["result"]["estimate"] - math.pi) > 1e-3]
flagged = [j for j in wrong if "dodger" in j.get("caught_lying", [])]
caught = any(w["name"] == "dodger" and w["quarantined"] for w in workers)
print(f"--verify {verify}: {len(done)} jobs, {len(wrong)} ended with a wrong estimate, "
      f"{len(flagged)} of those flagged by the end; the dodger {'was' if caught else 'was not'} caught")
PY

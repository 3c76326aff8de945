#!/usr/bin/env bash
# Checks the units with `systemd-analyze verify`. The units start
# /var/lib/marmot/{coordinator,worker}/bin/marmotd, which exist only on a deployed machine, so
# copies pointing at a built marmotd are verified.
# Usage: systemd/verify.sh [PATH-TO-MARMOTD]   (default: target/debug/marmotd)
set -euo pipefail
cd "$(dirname "$0")/.."
binary="$(realpath "${1:-target/debug/marmotd}")"
if ! command -v systemd-analyze >/dev/null; then
    echo "systemd-analyze is not installed (Debian: apt-get install systemd)" >&2
    exit 1
fi
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for unit in systemd/*.service; do
    sed -E "s#/var/lib/marmot/(coordinator|worker)/bin/marmotd#${binary}#" "$unit" > "$scratch/$(basename "$unit")"
done
# verify prints problems and exits non-zero on errors; warnings are failures here too.
output="$(systemd-analyze verify "$scratch"/*.service 2>&1)" || { echo "$output"; exit 1; }
if [ -n "$output" ]; then
    echo "$output"
    exit 1
fi
echo "systemd units verified: $(ls systemd/*.service | xargs -n1 basename | tr '\n' ' ')"

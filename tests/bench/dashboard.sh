#!/usr/bin/env bash
# What watching costs the coordinator: its CPU (share of one core) and memory with WORKERS
# real worker processes (1 slot each), in four phases of SECONDS each:
#   idle            no job, nobody watching
#   idle, watched   an open dashboard feed (/v1/overview/stream read by curl, as a page would)
#                   and /metrics scraped once a second
#   busy            a long pi job running, nobody watching
#   busy, watched   the same job, watched and scraped
# and the feed's bytes per second. Release binaries from BIN_DIR (default target/release).
#
# Usage: tests/bench/dashboard.sh [BIN_DIR] [WORKERS] [SECONDS]   (defaults: 100 workers, 30 s)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-target/release}
workers=${2:-100}
seconds=${3:-30}
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; sleep 1; rm -rf "$dir"' EXIT
sock=$dir/marmotd.sock
ctl() { "$bin/marmotctl" --socket "$sock" "$@"; }
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

http_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin/marmotd" coordinator --listen 127.0.0.1:0 --state-dir "$dir/state" --socket "$sock" \
    --http "127.0.0.1:$http_port" 2>"$dir/coordinator.log" &
coordinator=$!
until ctl status >/dev/null 2>&1; do sleep 0.05; done
addr=$(ctl --json status | field '["listen"]')
token=$(ctl join-token)
for i in $(seq "$workers"); do
    "$bin/marmotd" worker --coordinator "$addr" --token "$token" --name "w$i" --slots 1 \
        --state-dir "$dir/w$i" 2>"$dir/w$i.log" &
done
until [ "$(ctl --json status | field '["workers"]')" = "$workers" ]; do sleep 0.2; done
echo "$workers workers connected"

cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$coordinator/stat"; }
rss() { awk '/^VmRSS/ {print $2 / 1024}' "/proc/$coordinator/status"; }
phase() { # LABEL WATCHED
    local feed="" scraper="" c0 c1 bytes=0
    if [ "$2" = yes ]; then
        curl -sN "http://127.0.0.1:$http_port/v1/overview/stream" >"$dir/feed" &
        feed=$!
        (while true; do curl -s "http://127.0.0.1:$http_port/metrics" >/dev/null; sleep 1; done) &
        scraper=$!
    fi
    sleep 2 # settle
    c0=$(cpu); : >"$dir/feed"
    sleep "$seconds"
    c1=$(cpu); bytes=$(stat -c %s "$dir/feed")
    [ -n "$feed" ] && kill "$feed" "$scraper" 2>/dev/null && wait "$feed" "$scraper" 2>/dev/null || true
    python3 -c "print(f'{\"$1\":<16} coordinator CPU {($c1 - $c0) / $seconds * 100:5.2f}% of a core, RSS $(rss) MB, feed {$bytes / $seconds / 1024:.1f} KiB/s')"
}
phase "idle" no
phase "idle, watched" yes
job=$(ctl --json run pi 1e14 --detach | field '["id"]')
phase "busy" no
phase "busy, watched" yes
ctl cancel "$job" >/dev/null
echo "peak RSS $(awk '/^VmHWM/ {print $2 / 1024}' "/proc/$coordinator/status") MB"

#!/usr/bin/env bash
# A worker on a laptop, by numbers: what watching the laptop costs an idle worker (its CPU
# time over a minute, reading a laptop's sysfs and /proc/interrupts twice a second, beside a
# worker with nothing to read), and how long after the laptop is unplugged the worker stops
# using the CPU while every slot computes pi.
#
# Usage: tests/bench/laptop.sh [SECONDS]    (default 60; release binaries)
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
cargo build --release --quiet --bin marmotd --bin marmotctl
bin=target/release
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$dir"' EXIT
sock=$dir/marmotd.sock
ctl() { $bin/marmotctl --socket "$sock" "$@"; }

# A laptop: mains and a battery, six thermal zones, a keyboard's interrupts.
laptop=$dir/laptop
write() { mkdir -p "$(dirname "$laptop/$1")"; echo "$2" > "$laptop/$1.tmp"; mv "$laptop/$1.tmp" "$laptop/$1"; }
write sys/class/power_supply/AC/type Mains
write sys/class/power_supply/AC/online 1
write sys/class/power_supply/BAT0/type Battery
write sys/class/power_supply/BAT0/capacity 80
write sys/class/power_supply/BAT0/status Charging
for z in 0 1 2 3 4 5; do write "sys/class/thermal/thermal_zone$z/temp" 45000; done
mkdir -p "$laptop/proc"
printf '      CPU0  CPU1\n  1:  100  5  IO-APIC  1-edge  i8042\n 12:  900  7  IO-APIC  12-edge  i8042\n' > "$laptop/proc/interrupts"

$bin/marmotd coordinator --listen 127.0.0.1:0 --state-dir "$dir/state" --socket "$sock" \
    2>"$dir/coordinator.log" &
until ctl status >/dev/null 2>&1; do sleep 0.05; done
addr=$(ctl --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["listen"])')
token=$(ctl join-token)
start() { # NAME ROOT
    MARMOT_TEST_ROOT=$2 DBUS_SYSTEM_BUS_ADDRESS=unix:path=$dir/no-bus $bin/marmotd worker \
        --coordinator "$addr" --token "$token" --name "$1" --slots 2 --state-dir "$dir/$1" 2>"$dir/$1.log" &
}
start lap "$laptop"
lap=$!
start desk "$dir/nothing"
desk=$!
until [ "$(ctl --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["workers"])')" = 2 ]; do sleep 0.05; done

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tick=$(getconf CLK_TCK)
lap0=$(cpu $lap) desk0=$(cpu $desk)
sleep "$seconds"
lap1=$(cpu $lap) desk1=$(cpu $desk)
python3 -c "
t, s = $tick, $seconds
lap, desk = ($lap1 - $lap0) / t, ($desk1 - $desk0) / t
print(f'idle for {s} s: the worker watching a laptop used {100 * lap / s:.3f}% of a core, '
      f'the one with nothing to read {100 * desk / s:.3f}% (CPU ticks of {1000 / t:.0f} ms)')"

# Unplugged while both slots compute pi: when does the worker stop using the CPU?
kill "$desk"
job=$(ctl run pi 1e13 --detach)
until [ "$(ctl --json workers | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["slots_busy"])')" = 2 ]; do sleep 0.05; done
sleep 1
python3 - "$lap" "$laptop/sys/class/power_supply/AC/online" "$tick" <<'PY'
import sys, time, os
pid, online, tick = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
def cpu():
    f = open(f"/proc/{pid}/stat").read().rsplit(") ", 1)[1].split()
    return int(f[11]) + int(f[12])
with open(online + ".tmp", "w") as f:
    f.write("0\n")
os.rename(online + ".tmp", online)
unplugged = time.monotonic()
# Done when a 200 ms window costs at most one tick.
while True:
    before, at = cpu(), time.monotonic()
    time.sleep(0.2)
    if cpu() - before <= 1:
        print(f"unplugged with both slots busy: the worker used no CPU {at - unplugged:.2f} s later")
        break
    if time.monotonic() - unplugged > 30:
        print("unplugged: the worker still used CPU after 30 s")
        break
PY
ctl cancel "$job" >/dev/null

#!/usr/bin/env bash
# marmot under a real systemd: boots a Debian container (systemd-nspawn, systemd as PID 1)
# and checks the documented install, the units and self-update there, as root:
#   the .deb installs and enables nothing; `marmotd install coordinator` and `install worker`
#   (the join command it printed) start Type=notify services; the worker joins; a job runs;
#   `marmotctl update` keeps the worker's MainPID; `kill -9` is restarted by systemd;
#   `update --coordinator` keeps the coordinator's MainPID; a new binary that keeps crashing
#   before it is welcomed is rolled back by the probation counter under Restart=on-failure;
#   `systemctl stop` is clean; `uninstall` and `apt purge` leave no unit behind; the same
#   install from a copied binary (no package) writes and removes its own units; and the
#   README's manual install ("By hand"), both roles on one machine, runs as written.
#
# Usage: sudo systemd/lab.sh [PATH-TO-.deb]   (default: the newest target/debian/marmot_*.deb,
#        from `cargo deb -p marmotd`). The Debian rootfs is made once with debootstrap and
#        cached in /var/tmp/marmot-lab (delete it to start over); each run boots a copy of it.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

say() { printf '== %s\n' "$*"; }
fail() { printf 'lab: FAILED: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "must run as root (it boots a container)"
for tool in debootstrap systemd-nspawn nsenter dpkg-deb; do
    command -v "$tool" >/dev/null || fail "$tool is missing (apt-get install debootstrap systemd-container)"
done
deb="${1:-$(ls -t target/debian/marmot_*.deb 2>/dev/null | head -n1)}"
[ -f "$deb" ] || fail "no .deb: build one with cargo deb -p marmotd"

cache=/var/tmp/marmot-lab
rootfs="$cache/rootfs"
if [ ! -d "$rootfs" ]; then
    say "making a Debian rootfs in $rootfs (once)"
    mkdir -p "$cache"
    rm -rf "$rootfs.tmp"
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,procps bookworm \
        "$rootfs.tmp" >"$cache/debootstrap.log" 2>&1 || fail "debootstrap: see $cache/debootstrap.log"
    mv "$rootfs.tmp" "$rootfs"
fi

work="$(mktemp -d "$cache/run.XXXXXX")"
root="$work/root"
nspawn=""
# The container's network: its own namespace with loopback and one LAN-like address.
netns="marmot-lab-$$"
cleanup() {
    if [ -n "$nspawn" ] && kill -0 "$nspawn" 2>/dev/null; then
        kill -TERM "$nspawn" 2>/dev/null || true   # nspawn asks the container's systemd to halt
        for _ in $(seq 100); do kill -0 "$nspawn" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$nspawn" 2>/dev/null || true
    fi
    ip netns del "$netns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
cp -a --reflink=auto "$rootfs" "$root"
mkdir -p "$root/root/lab"
cp "$deb" "$root/root/lab/marmot.deb"
# Builds to update to: the packaged marmotd with bytes appended (another SHA-256, same version).
dpkg-deb -x "$deb" "$work/package"
cp "$work/package/usr/bin/marmotd" "$work/package/usr/bin/marmotctl" "$root/root/lab/"
for n in 1 2 3; do
    { cat "$root/root/lab/marmotd"; echo "lab build $n"; } >"$root/root/lab/marmotd-$n"
done
# And a newer version: the stamp's build time (14 digits) moved to the year 9999.
python3 - "$root/root/lab/marmotd" "$root/root/lab/marmotd-newer" <<'PY'
import re, sys
data = open(sys.argv[1], "rb").read()
newer, n = re.subn(rb"(MARMOT-VERSION\[[0-9.]+\+)[0-9]{14}\]", rb"\g<1>99991231235959]", data, count=1)
assert n == 1, "no version stamp in marmotd"
open(sys.argv[2], "wb").write(newer)
PY
chmod 755 "$root/root/lab"/marmot*

say "booting systemd in a container"
# A network of its own: loopback and 10.77.0.2 on one end of a veth pair (standing for the
# LAN card), so the coordinator has an address to print in its join command.
ip netns add "$netns"
ip -n "$netns" link set lo up
ip -n "$netns" link add lan0 type veth peer name lan1
ip -n "$netns" addr add 10.77.0.2/24 dev lan0
ip -n "$netns" link set lan1 up
ip -n "$netns" link set lan0 up
systemd-nspawn --register=no --keep-unit --network-namespace-path="/run/netns/$netns" --quiet \
    -D "$root" -b \
    >"$work/console.log" 2>&1 &
nspawn=$!
pid1=""
for _ in $(seq 200); do
    pid1="$(pgrep -P "$nspawn" -x systemd || true)"
    [ -n "$pid1" ] && break
    kill -0 "$nspawn" 2>/dev/null || { cat "$work/console.log"; fail "the container did not boot"; }
    sleep 0.1
done
[ -n "$pid1" ] || fail "no systemd in the container"
inside() {
    nsenter -t "$pid1" -a env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 "$@"
}
# The bus comes up a moment after PID 1: ask until it answers.
state=""
for _ in $(seq 300); do
    state="$(inside systemctl is-system-running --wait 2>/dev/null || true)"
    case "$state" in running|degraded) break ;; esac
    sleep 0.2
done
case "$state" in running|degraded) ;; *) fail "the container's systemd is '$state'" ;; esac
booted=$SECONDS

# Waits up to $1 seconds for a command to succeed.
until_ok() {
    local limit=$1; shift
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.2
    done
}
prop() { inside systemctl show -P "$2" "$1"; }
main_pid() { prop "$1" MainPID; }
sha() { inside sha256sum "$1" | cut -d' ' -f1; }
worker_sha() {
    inside marmotctl --json workers | python3 -c \
        'import json,sys; w=json.load(sys.stdin); print(w[0]["binary_sha256"] if w else "")'
}

say "the .deb installs and enables nothing"
inside dpkg -i /root/lab/marmot.deb >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i"; }
for unit in marmotd-coordinator marmotd-worker; do
    [ "$(inside systemctl is-enabled $unit || true)" = disabled ] || fail "$unit is enabled by the package"
    [ "$(inside systemctl is-active $unit || true)" = inactive ] || fail "$unit runs after dpkg -i"
done
inside test -x /var/lib/marmot/worker/bin/marmotd || fail "postinst left no worker binary"
[ "$(inside stat -c %a /etc/marmot/worker.env)" = 600 ] || fail "worker.env is not 0600"
inside test -f /usr/share/man/man1/marmotctl-update.1.gz \
    || fail "no man page"
inside test -f /usr/share/bash-completion/completions/marmotctl || fail "no bash completion"

say "marmotd install coordinator, then the worker with the join command it printed"
inside marmotd install coordinator >"$work/install-coordinator.log" 2>&1 \
    || { cat "$work/install-coordinator.log"; fail "install coordinator"; }
join="$(sed -n 's/^  sudo \(marmotd install worker .*\)$/\1/p' "$work/install-coordinator.log")"
case "$join" in
    "marmotd install worker --coordinator 10.77.0.2 --token marmot1-"*) ;;
    *) cat "$work/install-coordinator.log"; fail "install coordinator printed no join command for 10.77.0.2" ;;
esac
# shellcheck disable=SC2086 # the printed command, split into its words
inside $join --name lab >"$work/install-worker.log" 2>&1 \
    || { cat "$work/install-worker.log"; fail "install worker"; }
grep -q 'is a member of the cluster' "$work/install-worker.log" \
    || { cat "$work/install-worker.log"; fail "the worker did not join"; }
joined=$SECONDS
for unit in marmotd-coordinator marmotd-worker; do
    [ "$(prop $unit ActiveState)" = active ] || fail "$unit is not active"
    [ "$(prop $unit Type)" = notify ] || fail "$unit is not Type=notify"
    [ "$(inside systemctl is-enabled $unit)" = enabled ] || fail "$unit is not enabled"
    # The unit asks for 65536 (systemd grants at most the container's own hard limit), and
    # marmotd raises its soft limit to the hard one.
    [ "$(prop $unit LimitNOFILE)" = 65536 ] || fail "$unit does not set LimitNOFILE=65536"
    files="$(inside awk '/^Max open files/ {print $4, $5}' "/proc/$(main_pid $unit)/limits")"
    [ "${files% *}" = "${files#* }" ] || fail "$unit may open $files files: its soft limit is not its hard one"
done
# Installing again with the same settings changes nothing and restarts nothing.
pid="$(main_pid marmotd-worker)"
inside marmotd install worker --coordinator 10.77.0.2 --name lab >"$work/reinstall.log" 2>&1 \
    || { cat "$work/reinstall.log"; fail "install worker again (token kept)"; }
[ "$(main_pid marmotd-worker)" = "$pid" ] || fail "an unchanged install restarted the worker"

say "a job runs"
samples="$(inside marmotctl --json run pi 1e8 | python3 -c 'import json,sys; print(json.load(sys.stdin)["samples"])')"
[ "$samples" = 100000000 ] || fail "pi ran $samples samples"

say "a command runs under the worker unit's hardening"
# As the service's user, in its state dir, with /home hidden and no way to gain privileges.
out="$(inside marmotctl run cmd -- sh -c 'id -un; pwd; ls /home 2>&1 | head -1; \
    touch /usr/x 2>/dev/null && echo wrote-usr || echo read-only-usr' ::: one)" \
    || fail "run cmd: $out"
printf '%s\n' "$out" | sed -n 1p | grep -qx marmot || fail "a unit ran as another user: $out"
printf '%s\n' "$out" | sed -n 2p | grep -q '^/var/lib/marmot/worker/units/' \
    || fail "a unit ran outside the state dir: $out"
printf '%s\n' "$out" | grep -qx read-only-usr || fail "a unit could write /usr: $out"

say "the worker takes the lowest priority: an idle cgroup, units under SCHED_IDLE and idle I/O"
wpid="$(main_pid marmotd-worker)"
cgroup="$(inside cat "/proc/$wpid/cgroup" | sed -n 's/^0:://p')"
if inside test -e "/sys/fs/cgroup$cgroup/cpu.idle"; then
    [ "$(inside cat "/sys/fs/cgroup$cgroup/cpu.idle")" = 1 ] \
        || fail "the worker's cgroup $cgroup is not idle (cpu.idle is not 1): CPUWeight=idle"
else
    # A host on cgroup v1 keeps the cpu controller out of the unified hierarchy.
    say "SKIPPED: cpu.idle = 1 in the running cgroup: this host's cgroups give the container no cpu controller (cgroup v1); checked instead: the unit's CPUWeight is $(prop marmotd-worker CPUWeight)"
    case "$(prop marmotd-worker CPUWeight)" in idle|0) ;; *) fail "the worker unit does not ask for CPUWeight=idle" ;; esac
fi
[ "$(inside ionice -p "$wpid")" = idle ] || fail "the worker is not in the idle I/O class: $(inside ionice -p "$wpid")"
# Its slot threads, under the unit's seccomp filter, took SCHED_IDLE themselves.
slots=0
for task in $(inside sh -c "grep -l '^marmot-slot-' /proc/$wpid/task/*/comm" | cut -d/ -f5); do
    inside chrt -p "$task" | grep -q 'policy: SCHED_IDLE' || fail "slot thread $task is not under SCHED_IDLE"
    slots=$((slots + 1))
done
[ "$slots" -gt 0 ] || fail "the worker has no slot threads named marmot-slot-*"
out="$(inside marmotctl run cmd -- sh -c 'chrt -p $$; ionice -p $$' ::: one)" || fail "run cmd (priority): $out"
printf '%s\n' "$out" | grep -q 'policy: SCHED_IDLE' || fail "a unit is not under SCHED_IDLE: $out"
printf '%s\n' "$out" | grep -qx 'idle' || fail "a unit is not in the idle I/O class: $out"
# The figure: a program of the machine's own (a service beside the worker, nice 0) counts for
# a second beside the busy worker, then alone (the worker stopped meanwhile), seven rounds; the
# share of the time it wanted a CPU that it got (its schedstat) is printed, not judged: speed
# belongs in benchmarks (tests/bench/foreground.sh is the one for a worker started by hand).
count() {
    inside systemd-run --quiet --wait --pipe -p Nice=0 timeout --preserve-status -s INT 1 sh -c \
        'read r0 w0 x < /proc/$$/schedstat; n=0
         trap "read r1 w1 x < /proc/\$\$/schedstat; echo \$n \$((r1 - r0)) \$((w1 - w0)); exit 0" INT
         while :; do n=$((n+1)); done'
}
inside marmotctl run pi 1e13 --detach >"$work/busy-job"
until_ok 30 sh -c "nsenter -t $pid1 -a marmotctl --json workers | grep -q '\"slots_busy\": *[1-9]'" \
    || fail "the worker never got busy"
beside="" alone=""
for _ in 1 2 3 4 5 6 7; do
    beside="$beside $(count)"
    inside kill -STOP "$wpid"
    alone="$alone $(count)"
    inside kill -CONT "$wpid"
done
inside marmotctl cancel "$(cat "$work/busy-job")" >/dev/null
foreground="$(python3 -c '
import sys
def share(s):
    v = [int(x) for x in s.split()]
    return sum(v[1::3]) / sum(v[1::3] + v[2::3])
print(f"{share(sys.argv[1]):.4f} of the CPU time it wanted ({share(sys.argv[2]):.4f} with the worker stopped)")
' "$beside" "$alone")"
say "under the unit, a program beside the busy worker got $foreground"

say "a unit that daemonizes (setsid) does not outlive it: a cgroup of its own, delegated"
out="$(inside marmotctl run cmd -- sh -c 'setsid sh -c "echo \$\$; exec sleep 300" & sleep 0.2' ::: one)" \
    || fail "run cmd (setsid): $out"
daemon="$(printf '%s\n' "$out" | head -1)"
case "$daemon" in ''|*[!0-9]*) fail "the unit printed no daemon pid: $out" ;; esac
until_ok 10 sh -c "! nsenter -t $pid1 -a test -e /proc/$daemon" \
    || fail "the unit's daemon (pid $daemon) outlived it"
if inside journalctl -u marmotd-worker | grep -q 'process group only'; then
    fail "the worker unit gives the worker no cgroup for its units"
fi

say "marmotctl update keeps the worker's MainPID"
pid="$(main_pid marmotd-worker)"
inside marmotctl update /root/lab/marmotd-1 >"$work/update.log" 2>&1 || { cat "$work/update.log"; fail "update"; }
[ "$(worker_sha)" = "$(sha /root/lab/marmotd-1)" ] || fail "the worker does not run the new build"
[ "$(main_pid marmotd-worker)" = "$pid" ] || fail "the worker's MainPID changed on update"
[ "$(prop marmotd-worker NRestarts)" = 0 ] || fail "systemd restarted the worker during the update"

say "kill -9 of the worker: systemd restarts it"
inside systemctl kill --signal=KILL marmotd-worker
until_ok 30 sh -c "[ \"\$(nsenter -t $pid1 -a systemctl show -P MainPID marmotd-worker)\" != $pid ] && \
    [ \"\$(nsenter -t $pid1 -a systemctl show -P ActiveState marmotd-worker)\" = active ]" \
    || fail "the killed worker was not restarted"
# Reconnected: its new session answers (the killed one is listed until it times out).
until_ok 30 sh -c "nsenter -t $pid1 -a marmotctl ping --timeout 1s lab >/dev/null 2>&1" \
    || fail "the restarted worker did not reconnect"

say "marmotctl update --coordinator keeps the coordinator's MainPID"
cpid="$(main_pid marmotd-coordinator)"
inside marmotctl update --coordinator /root/lab/marmotd-2 >"$work/update-coordinator.log" 2>&1 \
    || { cat "$work/update-coordinator.log"; fail "update --coordinator"; }
until_ok 30 sh -c "[ \"\$(nsenter -t $pid1 -a sha256sum /var/lib/marmot/coordinator/bin/marmotd | cut -d' ' -f1)\" = $(sha /root/lab/marmotd-2) ]" \
    || fail "the coordinator's binary was not replaced"
until_ok 30 sh -c "nsenter -t $pid1 -a marmotctl status >/dev/null" || fail "the coordinator did not come back"
[ "$(main_pid marmotd-coordinator)" = "$cpid" ] || fail "the coordinator's MainPID changed on update"
[ "$(prop marmotd-coordinator NRestarts)" = 0 ] || fail "systemd restarted the coordinator during its update"
until_ok 30 sh -c "nsenter -t $pid1 -a marmotctl workers | grep -q lab" || fail "the worker did not reconnect"

say "apt and self-update do not fight: the newer binary wins"
inside marmotctl update /root/lab/marmotd-newer >"$work/update-newer.log" 2>&1 \
    || { cat "$work/update-newer.log"; fail "update to a newer version"; }
pid="$(main_pid marmotd-worker)"
cpid="$(main_pid marmotd-coordinator)"
# Installing the package again (as an upgrade does) runs its postinst refresh.
inside dpkg -i /root/lab/marmot.deb >>"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i again"; }
[ "$(sha /var/lib/marmot/worker/bin/marmotd)" = "$(sha /root/lab/marmotd-newer)" ] \
    || fail "the package replaced the worker's newer, self-updated binary"
[ "$(main_pid marmotd-worker)" = "$pid" ] || fail "the package restarted the worker it did not update"
[ "$(sha /var/lib/marmot/coordinator/bin/marmotd)" = "$(sha /usr/bin/marmotd)" ] \
    || fail "the package did not put its build in place of the coordinator's older one"
[ "$(main_pid marmotd-coordinator)" != "$cpid" ] || fail "the coordinator was not restarted onto the package's build"
[ "$(prop marmotd-coordinator ActiveState)" = active ] || fail "the coordinator is down after the upgrade"
until_ok 30 sh -c "nsenter -t $pid1 -a marmotctl workers | grep -q lab" || fail "the worker did not reconnect"

say "a new binary that keeps crashing before it is welcomed is rolled back"
# What the swap leaves (marmotd.prev, a pending record), with the coordinator down so the new
# binary can never be welcomed; each start is killed once it has counted itself.
inside systemctl stop marmotd-coordinator marmotd-worker
bin=/var/lib/marmot/worker/bin
good="$(sha $bin/marmotd)"
inside cp $bin/marmotd $bin/marmotd.prev
inside install -m 0755 -o marmot -g marmot /root/lab/marmotd-3 $bin/marmotd
printf '{"from_sha256":"%s","to_sha256":"%s","starts":0}' "$good" "$(sha /root/lab/marmotd-3)" \
    | inside install -m 0600 -o marmot -g marmot /dev/stdin /var/lib/marmot/worker/update-pending.json
inside chown marmot:marmot $bin/marmotd.prev
inside systemctl start marmotd-worker
for start in 1 2 3; do
    until_ok 30 inside grep -q "\"starts\":$start" /var/lib/marmot/worker/update-pending.json \
        || fail "start $start of the new binary was not counted"
    inside systemctl kill --signal=KILL marmotd-worker
done
until_ok 60 sh -c "! nsenter -t $pid1 -a test -e /var/lib/marmot/worker/update-pending.json" \
    || fail "no rollback after 3 crashed starts"
[ "$(sha $bin/marmotd)" = "$good" ] || fail "the previous binary is not back"
until_ok 10 sh -c "[ \"\$(nsenter -t $pid1 -a systemctl show -P ActiveState marmotd-worker)\" = active ]" \
    || fail "the rolled-back worker is not running"
[ "$(prop marmotd-worker NRestarts)" -ge 3 ] || fail "systemd did not restart the crashed binary"
inside systemctl start marmotd-coordinator
until_ok 30 sh -c "[ \"\$(nsenter -t $pid1 -a marmotctl --json workers | grep -o $good)\" = $good ]" \
    || fail "the rolled-back worker did not reconnect on its previous binary"

say "what systemd said about the units"
inside journalctl -b --no-pager -o cat _PID=1 | grep -i marmot | grep -iv 'signal\|started\|stopp\|starting\|deactivated\|scheduled restart\|reloading\|main process exited\|failed with result\|consumed' \
    | sort | uniq -c | sed 's/^/   /' || true
inside journalctl -b --no-pager -o cat _PID=1 | grep -i marmot | grep -qi 'unknown\|invalid\|ignoring' \
    && fail "systemd objects to the units (see above)"

say "logs in the journal: plain lines, stamped by the journal only"
for unit in marmotd-coordinator marmotd-worker; do
    log="$(inside journalctl -u $unit -o cat --no-pager _COMM=marmotd)"
    [ -n "$log" ] || fail "$unit logged nothing to the journal"
    ! printf '%s' "$log" | grep -q $'\e\[' || fail "$unit logs colour codes to the journal"
    ! printf '%s' "$log" | grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' || fail "$unit stamps its own lines"
done
inside journalctl -u marmotd-worker -o cat --no-pager | grep -q 'rolling back' \
    || fail "the rollback is not in the worker's journal"

say "systemctl stop is clean"
inside systemctl stop marmotd-worker marmotd-coordinator
for unit in marmotd-coordinator marmotd-worker; do
    [ "$(prop $unit ActiveState)" = inactive ] || fail "$unit did not stop cleanly ($(prop $unit ActiveState))"
    [ "$(prop $unit Result)" = success ] || fail "$unit stopped with $(prop $unit Result)"
done
inside test ! -e /run/marmot/marmotd.sock || fail "the control socket was left behind"

say "marmotd uninstall, then apt purge: no unit left"
inside marmotd uninstall >"$work/uninstall.log" 2>&1 || { cat "$work/uninstall.log"; fail "uninstall"; }
inside test -d /var/lib/marmot/coordinator || fail "uninstall without --purge removed the state"
inside dpkg --purge marmot >>"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg --purge"; }
[ -z "$(inside systemctl list-unit-files --no-legend 'marmotd*')" ] || fail "units left after purge"
inside test ! -e /var/lib/marmot || fail "/var/lib/marmot left after purge"
! inside getent passwd marmot >/dev/null || fail "the user marmot left after purge"

say "the same from a copied marmotd (no package): its own units, removed by uninstall --purge"
inside mkdir -p /root/dist
inside cp /root/lab/marmotd /root/lab/marmotctl /root/dist/
inside /root/dist/marmotd install coordinator >"$work/plain-coordinator.log" 2>&1 \
    || { cat "$work/plain-coordinator.log"; fail "plain install coordinator"; }
token="$(grep -o 'marmot1-[0-9a-f]*-[0-9a-f]*' "$work/plain-coordinator.log" | head -n1)"
inside /root/dist/marmotd install worker --coordinator 127.0.0.1 --token "$token" \
    >"$work/plain-worker.log" 2>&1 || { cat "$work/plain-worker.log"; fail "plain install worker"; }
inside test -f /etc/systemd/system/marmotd-worker.service || fail "no unit written"
inside test -x /usr/local/bin/marmotctl || fail "marmotctl not installed"
inside test -f /usr/local/share/man/man1/marmotctl-run-pi.1 || fail "marmotctl's man pages not installed"
inside marmotctl workers | grep -q . || fail "marmotctl from /usr/local/bin does not work"
inside /root/dist/marmotd uninstall --purge >"$work/plain-uninstall.log" 2>&1 \
    || { cat "$work/plain-uninstall.log"; fail "uninstall --purge"; }
[ -z "$(inside systemctl list-unit-files --no-legend 'marmotd*')" ] || fail "units left after uninstall"
inside test ! -e /usr/local/bin/marmotctl || fail "marmotctl left after uninstall"
inside test ! -e /var/lib/marmot || fail "state left after uninstall --purge"

say "the README's manual install (By hand), both roles on one machine, in its order"
# Its blocks run as written, from a directory holding marmotd, marmotctl and the repository's
# systemd/ files; only the token and the coordinator's address are filled in. A fresh
# machine: the user marmot comes from the README's first step.
inside userdel marmot 2>/dev/null || true
mkdir -p "$root/root/manual/systemd"
cp systemd/marmotd-coordinator.service systemd/marmotd-worker.service systemd/coordinator.env \
    systemd/worker.env "$root/root/manual/systemd/"
cp "$root/root/lab/marmotd" "$root/root/lab/marmotctl" "$root/root/manual/"
python3 - README.md "$root/root/manual" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
section = text[text.index("**By hand.**"):]
section = section[:section.index("**Sharing the control socket")]
blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
assert len(blocks) == 3, f"the By hand section has {len(blocks)} sh blocks, not 3"
for name, block in zip(["user", "coordinator", "worker"], blocks):
    open(f"{sys.argv[2]}/{name}.sh", "w").write("sudo() { \"$@\"; }\nset -e\ncd /root/manual\n" + block)
PY
inside bash /root/manual/user.sh >"$work/manual.log" 2>&1 || { cat "$work/manual.log"; fail "manual: the user"; }
inside bash /root/manual/coordinator.sh >>"$work/manual.log" 2>&1 \
    || { cat "$work/manual.log"; fail "manual: the coordinator"; }
token="$(grep -o 'marmot1-[0-9a-f]*-[0-9a-f]*' "$work/manual.log" | head -n1)"
[ -n "$token" ] || { cat "$work/manual.log"; fail "manual: join-token printed no token"; }
sed -i "s/marmot1-\.\.\./$token/; s/192\.168\.1\.25/127.0.0.1/" "$root/root/manual/worker.sh"
inside bash /root/manual/worker.sh >>"$work/manual.log" 2>&1 \
    || { cat "$work/manual.log"; fail "manual: the worker"; }
until_ok 30 inside sh -c 'marmotctl workers | grep -q .' \
    || { inside journalctl -u marmotd-worker --no-pager | tail -n 20; fail "manual: the worker did not join"; }
for unit in marmotd-coordinator marmotd-worker; do
    [ "$(prop $unit ActiveState)" = active ] || fail "manual: $unit is $(prop $unit ActiveState)"
done
for role in coordinator worker; do
    [ "$(inside stat -c %U /var/lib/marmot/$role)" = marmot ] || fail "manual: /var/lib/marmot/$role is not marmot's"
done
inside marmotctl run pi 1e6 >"$work/manual-pi.log" 2>&1 || { cat "$work/manual-pi.log"; fail "manual: a job"; }
grep -q "pi ≈ 3.14" "$work/manual-pi.log" || { cat "$work/manual-pi.log"; fail "manual: no estimate"; }

say "what the installs printed"
sed 's/^/   /' "$work/install-coordinator.log" "$work/install-worker.log" | grep -v '^   install \|^   write\|^   useradd\|^   systemctl\|^   /usr\|^   # keep\|^       ' || true
say "passed: booted in $((booted - started)) s; .deb to a joined worker in $((joined - booted)) s; \
a program beside the busy worker got $foreground; whole lab $((SECONDS - started)) s"

# Sourced by the bench scripts: with $bin (a dir of release binaries) set, makes a temp dir
# ($dir, removed on exit with every process started), starts a coordinator on a free UDP port
# ($port, pid $coordinator) with its socket at $sock, and gets a join token ($token).
# Defines `ctl` (marmotctl on that socket), `workers_connected`, `start_coordinator [FLAGS]`
# (again, after a stop), `start_worker NAME` and `seconds COMMAND...`.
for exe in "$bin/marmotd" "$bin/marmotctl"; do
    [ -x "$exe" ] || { echo "no $exe: build the release binaries first" >&2; exit 2; }
done
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$dir"' EXIT
sock=$dir/marmotd.sock
ctl() { "$bin/marmotctl" --socket "$sock" "$@"; }
workers_connected() { ctl --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["workers"])'; }
seconds() { # COMMAND... -> its wall seconds (its output dropped)
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start_coordinator() { # [EXTRA FLAGS...] -> a coordinator on $port and $dir/state (again after a stop)
    "$bin/marmotd" coordinator --listen "127.0.0.1:$port" --state-dir "$dir/state" --socket "$sock" \
        "$@" >>"$dir/coordinator.log" 2>&1 &
    coordinator=$!
    until ctl status >/dev/null 2>&1; do sleep 0.01; done
}
start_coordinator
token=$(ctl --json join-token | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
start_worker() { # NAME -> a 1-slot worker joined with $token, state in $dir/NAME, log $dir/NAME.log
    MARMOT_TOKEN=$token "$bin/marmotd" worker --coordinator "127.0.0.1:$port" --name "$1" --slots 1 \
        --state-dir "$dir/$1" >"$dir/$1.log" 2>&1 &
}

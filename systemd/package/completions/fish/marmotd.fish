# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_marmotd_global_optspecs
    string join \n h/help V/version
end

function __fish_marmotd_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_marmotd_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_marmotd_using_subcommand
    set -l cmd (__fish_marmotd_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c marmotd -n "__fish_marmotd_needs_command" -s h -l help -d 'Print help'
complete -c marmotd -n "__fish_marmotd_needs_command" -s V -l version -d 'Print version'
complete -c marmotd -n "__fish_marmotd_needs_command" -f -a "coordinator" -d 'Run the coordinator: accept workers, schedule jobs, serve the control socket'
complete -c marmotd -n "__fish_marmotd_needs_command" -f -a "worker" -d 'Run a worker: join the coordinator once with a token, then stay connected'
complete -c marmotd -n "__fish_marmotd_needs_command" -f -a "local" -d 'Run a coordinator and N workers in this process on 127.0.0.1, until Ctrl-C'
complete -c marmotd -n "__fish_marmotd_needs_command" -f -a "demo" -d 'Start a local cluster, run ping and every task once, print the results and exit'
complete -c marmotd -n "__fish_marmotd_needs_command" -f -a "install" -d 'Install marmot as a systemd service on this machine (as root), or change its settings'
complete -c marmotd -n "__fish_marmotd_needs_command" -f -a "uninstall" -d 'Stop and remove an installed role (both, if none is named); its state is kept unless --purge'
complete -c marmotd -n "__fish_marmotd_needs_command" -f -a "completions" -d 'Print a shell completion script for bash, zsh or fish'
complete -c marmotd -n "__fish_marmotd_needs_command" -f -a "man-pages" -d 'Write the man pages into DIR (used to package and install them)'
complete -c marmotd -n "__fish_marmotd_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c marmotd -n "__fish_marmotd_using_subcommand coordinator" -l listen -d 'UDP address workers connect to' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand coordinator" -l san -d 'Optional: another DNS name or IP to put in the coordinator\'s certificate (repeatable). Workers need none: they check the name `coordinator.marmot`, not the address they dial, so a new DHCP lease breaks nothing. For other tools that check the address' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand coordinator" -l state-dir -d 'Where the cluster CA, keys and join secret live [default: /var/lib/marmot/coordinator as root, else $XDG_DATA_HOME/marmot/coordinator]' -r -F
complete -c marmotd -n "__fish_marmotd_using_subcommand coordinator" -l socket -d 'The control socket `marmotctl` talks to [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotd -n "__fish_marmotd_using_subcommand coordinator" -l socket-group -d 'Make the control socket 0660 and owned by this group (default: 0600, owner only)' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand coordinator" -l dead-after -d 'A worker silent this long is considered dead and its chunks run elsewhere' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand coordinator" -l straggler-factor -d 'A chunk running this many times its job\'s median chunk time gets a backup copy' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand coordinator" -l worker-cert-life -d 'How long a worker certificate is valid; connected workers get a new one when less than a third of this is left' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand coordinator" -l verify -d 'The share of each job\'s chunks also run on a second worker and compared bit for bit (0 to 1; a job may ask for another with `marmotctl run --verify`)' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand coordinator" -l max-jobs -d 'Jobs waiting or running at once, at most; more are refused until some end' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand coordinator" -l keep-results -d 'How long an ended job\'s result is kept in the journal; one never read is kept at least this long, however many others come after it' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand coordinator" -l keep-results-count -d 'How many of the newest ended jobs are kept unread past --keep-results; read ones go when past either bound' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand coordinator" -l file-store -d 'How much the store of files uploaded for commands (`marmotctl run cmd --file`) may hold before the least recently used are removed, e.g. 4GiB' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand coordinator" -l files-max -d 'How many files that store may hold. Files that queued and running jobs need are kept whatever the bounds; a job whose files cannot be kept is refused' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand coordinator" -l spool -d 'How much output of command jobs may wait on this machine\'s disk for the clients that take it, all jobs together, e.g. 4GiB. Past it (or past --spool-per-job), a job\'s units wait until its client takes some' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand coordinator" -l spool-per-job -d 'How much of one job\'s output may wait, e.g. 1GiB' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand coordinator" -l http -d 'Serve the web dashboard and /metrics over HTTP on ADDR: a port alone (8080) listens on 127.0.0.1 only, where reading needs no token; any other address (0.0.0.0:8080) asks for the token `marmotctl dashboard-token` makes. Cancelling a job always needs it. Off by default (`marmotctl dashboard` works without it)' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand coordinator" -l journal-reset -d 'Move the journal (STATE_DIR/journal.sqlite) aside, keeping it as journal.sqlite.reset-TIME, and start an empty one: for a journal the coordinator refuses. Jobs it held are not resumed'
complete -c marmotd -n "__fish_marmotd_using_subcommand coordinator" -s h -l help -d 'Print help'
complete -c marmotd -n "__fish_marmotd_using_subcommand worker" -l coordinator -d 'The coordinator, as HOST or HOST:PORT (default port 7070). A name that does not resolve yet (DNS not up at boot) is retried, like an unreachable coordinator' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand worker" -l token -d 'The join token from `marmotctl join-token`, needed for the first start only. Prefer the environment variable, or `-` to read it from stdin: arguments are visible to every user in `ps`' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand worker" -l name -d 'The name this worker is listed under: letters, digits, \'-\', \'_\', \'.\' [default: the host name]' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand worker" -l slots -d 'How many chunks run at once [default: the available cores]' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand worker" -l state-dir -d 'Where the worker\'s key and certificate live [default: /var/lib/marmot/worker as root, else $XDG_DATA_HOME/marmot/worker]' -r -F
complete -c marmotd -n "__fish_marmotd_using_subcommand worker" -l dead-after -d 'The coordinator silent this long is considered gone, and the worker reconnects' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand worker" -l lease -d 'How long a chunk keeps running, and its result is kept, while the coordinator is out of reach: delivered when the worker reconnects within it, so a coordinator restart or a short network outage costs no work' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand worker" -l file-cache -d 'How much the cache of command files (`--file`, `--input-files`) may hold before the least recently used are removed, e.g. 500MiB, 2GiB' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand worker" -l on-battery -d 'On battery: pause (take no chunks, suspend running commands), run, or slots=N' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand worker" -l battery-below -d 'On battery below this charge (percent), pause whatever --on-battery says' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand worker" -l max-temp -d 'At or above this temperature (°C, the hottest thermal zone) give up a slot every 10 s; all come back below 10 °C less' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand worker" -l in-use -d 'While someone uses the machine (keyboard or touchpad input within --idle-after): pause, run, or slots=N' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand worker" -l idle-after -d 'How long without input before the machine counts as not in use' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand worker" -l hours -d 'Work only in these hours, local time, e.g. 22:00-07:00 or 12:00-13:00,19:00-23:30 [default: all day]' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand worker" -l no-exec -d 'Run no users\' commands (`marmotctl run cmd`): their units go to other workers'
complete -c marmotd -n "__fish_marmotd_using_subcommand worker" -l update-trial -d 'Internal: the trial start of a newly received binary (connect, shake hands, exit)'
complete -c marmotd -n "__fish_marmotd_using_subcommand worker" -s h -l help -d 'Print help'
complete -c marmotd -n "__fish_marmotd_using_subcommand local" -l workers -d 'How many workers to start' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand local" -l slots -d 'Slots per worker [default: the machine\'s cores shared between the workers]' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand local" -s h -l help -d 'Print help'
complete -c marmotd -n "__fish_marmotd_using_subcommand demo" -l workers -d 'How many workers to start' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand demo" -l slots -d 'Slots per worker [default: the machine\'s cores shared between the workers]' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand demo" -s h -l help -d 'Print help'
complete -c marmotd -n "__fish_marmotd_using_subcommand install; and not __fish_seen_subcommand_from coordinator worker refresh help" -l dry-run -d 'Print every step instead of doing it'
complete -c marmotd -n "__fish_marmotd_using_subcommand install; and not __fish_seen_subcommand_from coordinator worker refresh help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c marmotd -n "__fish_marmotd_using_subcommand install; and not __fish_seen_subcommand_from coordinator worker refresh help" -f -a "coordinator" -d 'This machine coordinates: prints the command that adds a worker'
complete -c marmotd -n "__fish_marmotd_using_subcommand install; and not __fish_seen_subcommand_from coordinator worker refresh help" -f -a "worker" -d 'This machine works for the coordinator at HOST[:PORT]'
complete -c marmotd -n "__fish_marmotd_using_subcommand install; and not __fish_seen_subcommand_from coordinator worker refresh help" -f -a "refresh" -d 'For the Debian package\'s postinst: put this binary in place for each role unless that role runs a newer one, restarting running services onto it'
complete -c marmotd -n "__fish_marmotd_using_subcommand install; and not __fish_seen_subcommand_from coordinator worker refresh help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c marmotd -n "__fish_marmotd_using_subcommand install; and __fish_seen_subcommand_from coordinator" -l san -d 'Another DNS name or IP for the coordinator\'s certificate (repeatable); workers need none' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand install; and __fish_seen_subcommand_from coordinator" -l dry-run -d 'Print every step instead of doing it'
complete -c marmotd -n "__fish_marmotd_using_subcommand install; and __fish_seen_subcommand_from coordinator" -s h -l help -d 'Print help'
complete -c marmotd -n "__fish_marmotd_using_subcommand install; and __fish_seen_subcommand_from worker" -l coordinator -d 'The coordinator, as HOST or HOST:PORT (default port 7070)' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand install; and __fish_seen_subcommand_from worker" -l token -d 'The join token from `marmotctl join-token` (kept from the last install if not given; not needed once the worker has joined). `-` reads it from stdin, out of sight of `ps`, where arguments are shown to every user of the machine' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand install; and __fish_seen_subcommand_from worker" -l name -d 'The name this worker is listed under: letters, digits, \'-\', \'_\', \'.\' [default: the host name]' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand install; and __fish_seen_subcommand_from worker" -l slots -d 'How many chunks run at once [default: the available cores]' -r
complete -c marmotd -n "__fish_marmotd_using_subcommand install; and __fish_seen_subcommand_from worker" -l dry-run -d 'Print every step instead of doing it'
complete -c marmotd -n "__fish_marmotd_using_subcommand install; and __fish_seen_subcommand_from worker" -s h -l help -d 'Print help'
complete -c marmotd -n "__fish_marmotd_using_subcommand install; and __fish_seen_subcommand_from refresh" -l dry-run -d 'Print every step instead of doing it'
complete -c marmotd -n "__fish_marmotd_using_subcommand install; and __fish_seen_subcommand_from refresh" -s h -l help -d 'Print help'
complete -c marmotd -n "__fish_marmotd_using_subcommand install; and __fish_seen_subcommand_from help" -f -a "coordinator" -d 'This machine coordinates: prints the command that adds a worker'
complete -c marmotd -n "__fish_marmotd_using_subcommand install; and __fish_seen_subcommand_from help" -f -a "worker" -d 'This machine works for the coordinator at HOST[:PORT]'
complete -c marmotd -n "__fish_marmotd_using_subcommand install; and __fish_seen_subcommand_from help" -f -a "refresh" -d 'For the Debian package\'s postinst: put this binary in place for each role unless that role runs a newer one, restarting running services onto it'
complete -c marmotd -n "__fish_marmotd_using_subcommand install; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c marmotd -n "__fish_marmotd_using_subcommand uninstall" -l purge -d 'Remove the state too: the cluster CA and keys (a coordinator), the membership (a worker), and the user marmot when nothing is left'
complete -c marmotd -n "__fish_marmotd_using_subcommand uninstall" -l dry-run -d 'Print every step instead of doing it'
complete -c marmotd -n "__fish_marmotd_using_subcommand uninstall" -s h -l help -d 'Print help'
complete -c marmotd -n "__fish_marmotd_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c marmotd -n "__fish_marmotd_using_subcommand man-pages" -s h -l help -d 'Print help'
complete -c marmotd -n "__fish_marmotd_using_subcommand help; and not __fish_seen_subcommand_from coordinator worker local demo install uninstall completions man-pages help" -f -a "coordinator" -d 'Run the coordinator: accept workers, schedule jobs, serve the control socket'
complete -c marmotd -n "__fish_marmotd_using_subcommand help; and not __fish_seen_subcommand_from coordinator worker local demo install uninstall completions man-pages help" -f -a "worker" -d 'Run a worker: join the coordinator once with a token, then stay connected'
complete -c marmotd -n "__fish_marmotd_using_subcommand help; and not __fish_seen_subcommand_from coordinator worker local demo install uninstall completions man-pages help" -f -a "local" -d 'Run a coordinator and N workers in this process on 127.0.0.1, until Ctrl-C'
complete -c marmotd -n "__fish_marmotd_using_subcommand help; and not __fish_seen_subcommand_from coordinator worker local demo install uninstall completions man-pages help" -f -a "demo" -d 'Start a local cluster, run ping and every task once, print the results and exit'
complete -c marmotd -n "__fish_marmotd_using_subcommand help; and not __fish_seen_subcommand_from coordinator worker local demo install uninstall completions man-pages help" -f -a "install" -d 'Install marmot as a systemd service on this machine (as root), or change its settings'
complete -c marmotd -n "__fish_marmotd_using_subcommand help; and not __fish_seen_subcommand_from coordinator worker local demo install uninstall completions man-pages help" -f -a "uninstall" -d 'Stop and remove an installed role (both, if none is named); its state is kept unless --purge'
complete -c marmotd -n "__fish_marmotd_using_subcommand help; and not __fish_seen_subcommand_from coordinator worker local demo install uninstall completions man-pages help" -f -a "completions" -d 'Print a shell completion script for bash, zsh or fish'
complete -c marmotd -n "__fish_marmotd_using_subcommand help; and not __fish_seen_subcommand_from coordinator worker local demo install uninstall completions man-pages help" -f -a "man-pages" -d 'Write the man pages into DIR (used to package and install them)'
complete -c marmotd -n "__fish_marmotd_using_subcommand help; and not __fish_seen_subcommand_from coordinator worker local demo install uninstall completions man-pages help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c marmotd -n "__fish_marmotd_using_subcommand help; and __fish_seen_subcommand_from install" -f -a "coordinator" -d 'This machine coordinates: prints the command that adds a worker'
complete -c marmotd -n "__fish_marmotd_using_subcommand help; and __fish_seen_subcommand_from install" -f -a "worker" -d 'This machine works for the coordinator at HOST[:PORT]'
complete -c marmotd -n "__fish_marmotd_using_subcommand help; and __fish_seen_subcommand_from install" -f -a "refresh" -d 'For the Debian package\'s postinst: put this binary in place for each role unless that role runs a newer one, restarting running services onto it'

# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_marmotctl_global_optspecs
    string join \n socket= json h/help V/version
end

function __fish_marmotctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_marmotctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_marmotctl_using_subcommand
    set -l cmd (__fish_marmotctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c marmotctl -n "__fish_marmotctl_needs_command" -l socket -d 'The coordinator\'s control socket [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotctl -n "__fish_marmotctl_needs_command" -l json -d 'Print one JSON document instead of human output (errors too: {"error": ...})'
complete -c marmotctl -n "__fish_marmotctl_needs_command" -s h -l help -d 'Print help'
complete -c marmotctl -n "__fish_marmotctl_needs_command" -s V -l version -d 'Print version'
complete -c marmotctl -n "__fish_marmotctl_needs_command" -f -a "status" -d 'The coordinator\'s state: workers, slots in use, chunks queued, jobs running'
complete -c marmotctl -n "__fish_marmotctl_needs_command" -f -a "workers" -d 'The connected workers'
complete -c marmotctl -n "__fish_marmotctl_needs_command" -f -a "ping" -d 'Round-trip time to each worker (all, or those named); exits 1 if any timed out'
complete -c marmotctl -n "__fish_marmotctl_needs_command" -f -a "run" -d 'Run a task on the cluster and print its result'
complete -c marmotctl -n "__fish_marmotctl_needs_command" -f -a "bench" -d 'Score every worker\'s slots with the pi kernel'
complete -c marmotctl -n "__fish_marmotctl_needs_command" -f -a "jobs" -d 'Running and recent jobs, with what each was asked to do'
complete -c marmotctl -n "__fish_marmotctl_needs_command" -f -a "result" -d 'Print an ended job\'s result again (a job\'s result is kept for 7 days by default)'
complete -c marmotctl -n "__fish_marmotctl_needs_command" -f -a "parallel" -d 'GNU parallel\'s command line, its jobs run on the cluster: `marmotctl parallel gzip ::: *.txt`. Options and replacement strings as `man parallel` says; what marmot does not do is refused with the reason'
complete -c marmotctl -n "__fish_marmotctl_needs_command" -f -a "rerun" -d 'Run a pi, prime or count job again, as it was asked for: for a job whose results came in part from a worker later caught lying (`marmotctl jobs` says so)'
complete -c marmotctl -n "__fish_marmotctl_needs_command" -f -a "wait" -d 'Follow a job to its end (with a progress bar) and print its result'
complete -c marmotctl -n "__fish_marmotctl_needs_command" -f -a "cancel" -d 'Cancel a running job'
complete -c marmotctl -n "__fish_marmotctl_needs_command" -f -a "exit" -d 'Tell workers to hand back their running chunks and exit; the coordinator keeps running'
complete -c marmotctl -n "__fish_marmotctl_needs_command" -f -a "clear" -d 'Let a quarantined worker take chunks again (after its results were contradicted by two other workers: check its RAM, e.g. with memtest86+)'
complete -c marmotctl -n "__fish_marmotctl_needs_command" -f -a "revoke" -d 'Revoke a worker\'s certificate: it is disconnected and refused from now on (for a lost or stolen laptop). Its name is free again; rotate the join token too if the machine had it (`marmotctl join-token --rotate`)'
complete -c marmotctl -n "__fish_marmotctl_needs_command" -f -a "update" -d 'Roll a new marmotd over the workers (and with --coordinator, the coordinator)'
complete -c marmotctl -n "__fish_marmotctl_needs_command" -f -a "join-token" -d 'Print the token a new worker joins with (`marmotd worker --token ...`)'
complete -c marmotctl -n "__fish_marmotctl_needs_command" -f -a "dashboard" -d 'Open the web dashboard: serve it on a local port through the control socket and print its URL (with a secret only that URL carries). Ctrl-C stops it'
complete -c marmotctl -n "__fish_marmotctl_needs_command" -f -a "dashboard-token" -d 'Make the token the coordinator\'s `--http` dashboard asks for: shown once, the coordinator keeps only its hash'
complete -c marmotctl -n "__fish_marmotctl_needs_command" -f -a "logs" -d 'Print the log lines the workers sent (and the coordinator\'s own), oldest first'
complete -c marmotctl -n "__fish_marmotctl_needs_command" -f -a "top" -d 'The cluster live in the terminal: workers, jobs and events (q quits)'
complete -c marmotctl -n "__fish_marmotctl_needs_command" -f -a "completions" -d 'Print a shell completion script for bash, zsh or fish'
complete -c marmotctl -n "__fish_marmotctl_needs_command" -f -a "man-pages" -d 'Write the man pages into DIR (used to package and install them)'
complete -c marmotctl -n "__fish_marmotctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand status" -l socket -d 'The coordinator\'s control socket [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand status" -l json -d 'Print one JSON document instead of human output (errors too: {"error": ...})'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand status" -s h -l help -d 'Print help'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand workers" -l socket -d 'The coordinator\'s control socket [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand workers" -l json -d 'Print one JSON document instead of human output (errors too: {"error": ...})'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand workers" -s h -l help -d 'Print help'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand ping" -l timeout -d 'How long to wait for each worker' -r
complete -c marmotctl -n "__fish_marmotctl_using_subcommand ping" -l socket -d 'The coordinator\'s control socket [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand ping" -l json -d 'Print one JSON document instead of human output (errors too: {"error": ...})'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand ping" -s h -l help -d 'Print help'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and not __fish_seen_subcommand_from pi prime count freefall cmd help" -l socket -d 'The coordinator\'s control socket [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and not __fish_seen_subcommand_from pi prime count freefall cmd help" -l no-wait-for-workers -d 'Refuse the job when no worker is connected, rather than queue it until one is'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and not __fish_seen_subcommand_from pi prime count freefall cmd help" -l json -d 'Print one JSON document instead of human output (errors too: {"error": ...})'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and not __fish_seen_subcommand_from pi prime count freefall cmd help" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and not __fish_seen_subcommand_from pi prime count freefall cmd help" -f -a "pi" -d 'Monte Carlo estimate of pi'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and not __fish_seen_subcommand_from pi prime count freefall cmd help" -f -a "prime" -d 'Is N prime? Prints a factor if not; the first chunk that finds one ends the job'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and not __fish_seen_subcommand_from pi prime count freefall cmd help" -f -a "count" -d 'How often a letter occurs: in random letters, inline text, or a file'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and not __fish_seen_subcommand_from pi prime count freefall cmd help" -f -a "freefall" -d 'A body thrown up, every dt seconds until it lands: `t y` lines (gnuplot-ready) and a plot, streamed in order while the cluster computes them'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and not __fish_seen_subcommand_from pi prime count freefall cmd help" -f -a "cmd" -d 'Your own command once per input, on free worker slots, in the manner of GNU parallel: `marmotctl run cmd --input-files \'*.log\' -- gzip -9 {}`, `marmotctl run cmd -- echo {} ::: a b c`. Exits with the number of failed units (at most 101)'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and not __fish_seen_subcommand_from pi prime count freefall cmd help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from pi" -l seed -d 'The random seed: the same samples and seed always give the same estimate' -r
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from pi" -l verify -d 'The share of chunks (0 to 1) also run on a second worker and compared bit for bit; a mismatch is decided by a third [default: the coordinator\'s --verify]' -r
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from pi" -l socket -d 'The coordinator\'s control socket [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from pi" -l detach -d 'Print the job id and return at once: the job runs on; `marmotctl wait JOB` follows it, `marmotctl cancel JOB` stops it'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from pi" -l no-wait-for-workers -d 'Refuse the job when no worker is connected, rather than queue it until one is'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from pi" -l json -d 'Print one JSON document instead of human output (errors too: {"error": ...})'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from pi" -s h -l help -d 'Print help'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from prime" -l method -d 'trial: divide by every candidate up to √N; auto: a primality test, then rho' -r -f -a "trial\t''
auto\t''"
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from prime" -l verify -d 'The share of chunks (0 to 1) also run on a second worker and compared bit for bit; a mismatch is decided by a third [default: the coordinator\'s --verify]' -r
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from prime" -l socket -d 'The coordinator\'s control socket [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from prime" -l detach -d 'Print the job id and return at once: the job runs on; `marmotctl wait JOB` follows it, `marmotctl cancel JOB` stops it'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from prime" -l no-wait-for-workers -d 'Refuse the job when no worker is connected, rather than queue it until one is'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from prime" -l json -d 'Print one JSON document instead of human output (errors too: {"error": ...})'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from prime" -s h -l help -d 'Print help'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from count" -l random -d 'Count in N random lowercase letters made on the workers (1e10 works)' -r
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from count" -l seed -d 'The seed of --random: the same N and seed always give the same count [default: 0]. Only --random has one: --text and --file are counted as they are' -r
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from count" -l file -d 'Count in a file, read by the coordinator with its own rights (under systemd: not in /home, /root or /tmp; see the README)' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from count" -l text -d 'Count in this text' -r
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from count" -l verify -d 'The share of chunks (0 to 1) also run on a second worker and compared bit for bit; a mismatch is decided by a third [default: the coordinator\'s --verify]' -r
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from count" -l socket -d 'The coordinator\'s control socket [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from count" -l ignore-case -d 'Count upper and lower case alike'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from count" -l detach -d 'Print the job id and return at once: the job runs on; `marmotctl wait JOB` follows it, `marmotctl cancel JOB` stops it'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from count" -l no-wait-for-workers -d 'Refuse the job when no worker is connected, rather than queue it until one is'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from count" -l json -d 'Print one JSON document instead of human output (errors too: {"error": ...})'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from count" -s h -l help -d 'Print help'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from freefall" -l y0 -d 'Starting height, m' -r
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from freefall" -l v0 -d 'Starting upward speed, m/s' -r
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from freefall" -l g -d 'Gravity, m/s²' -r
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from freefall" -l dt -d 'Seconds between two points' -r
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from freefall" -l drag -d 'Quadratic air drag K (a = -g - K·v·|v|), integrated with RK4' -r
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from freefall" -l sweep-drag -d 'One whole trajectory per drag value from A to B in STEPS values: rows of `drag time_to_ground impact_speed max_height`' -r
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from freefall" -l out -d 'Write the results here as text lines (`-` for stdout)' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from freefall" -l plot -d 'Draw the results into this PNG (the only format; checked before the job starts)' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from freefall" -l size -d 'The plot\'s size in pixels' -r
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from freefall" -l socket -d 'The coordinator\'s control socket [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from freefall" -l detach -d 'Not offered (freefall streams to this command), but explained if tried'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from freefall" -l no-wait-for-workers -d 'Refuse the job when no worker is connected, rather than queue it until one is'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from freefall" -l json -d 'Print one JSON document instead of human output (errors too: {"error": ...})'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from freefall" -s h -l help -d 'Print help'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from cmd" -l inputs -d 'Read inputs from FILE, one per line (`-` for stdin)' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from cmd" -l input-files -d 'One unit per file matching each GLOB: the file is sent to the worker that runs it and appears in its work dir under its own name, which is the input ({})' -r
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from cmd" -l file -d 'A file every unit gets in its work dir, under its own name (a script, data, a program); repeatable. Sent to each worker once, cached there by content' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from cmd" -l results -d 'Files a unit writes under $MARMOT_OUT come back into DIR/<unit number>/' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from cmd" -l joblog -d 'Write one line per unit (GNU parallel\'s joblog columns) to FILE' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from cmd" -l retries -d 'Run a failed unit again, on another worker if there is one, up to N times' -r
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from cmd" -l halt -d 'Stop the job on failures or successes: now,fail=1 (kill running units), soon,fail=3 (let them finish), now,success=1, soon,fail=10%, never' -r
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from cmd" -l timeout -d 'Stop a unit that runs longer, e.g. 30s, 5m; it counts as failed' -r
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from cmd" -l slots-per-unit -d 'Slots a unit takes on its worker, for multi-threaded commands' -r
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from cmd" -l env -d 'Set a variable in each unit\'s environment (K=V), repeatable' -r
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from cmd" -l socket -d 'The coordinator\'s control socket [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from cmd" -s k -l keep-order -d 'Print units\' output in input order (through a bounded window) instead of as they end'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from cmd" -l resume -d 'Skip the units the --joblog FILE of an earlier run of the same job shows, and append to it (as GNU parallel\'s --resume)'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from cmd" -l resume-failed -d 'Like --resume, but run again the units the joblog shows failed'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from cmd" -l no-wait-for-workers -d 'Refuse the job when no worker is connected, rather than queue it until one is'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from cmd" -l json -d 'Print one JSON document instead of human output (errors too: {"error": ...})'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from cmd" -s h -l help -d 'Print help'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from help" -f -a "pi" -d 'Monte Carlo estimate of pi'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from help" -f -a "prime" -d 'Is N prime? Prints a factor if not; the first chunk that finds one ends the job'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from help" -f -a "count" -d 'How often a letter occurs: in random letters, inline text, or a file'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from help" -f -a "freefall" -d 'A body thrown up, every dt seconds until it lands: `t y` lines (gnuplot-ready) and a plot, streamed in order while the cluster computes them'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from help" -f -a "cmd" -d 'Your own command once per input, on free worker slots, in the manner of GNU parallel: `marmotctl run cmd --input-files \'*.log\' -- gzip -9 {}`, `marmotctl run cmd -- echo {} ::: a b c`. Exits with the number of failed units (at most 101)'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand run; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand bench" -l length -d 'How long each slot runs the kernel' -r
complete -c marmotctl -n "__fish_marmotctl_using_subcommand bench" -l socket -d 'The coordinator\'s control socket [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand bench" -l json -d 'Print one JSON document instead of human output (errors too: {"error": ...})'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand bench" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand jobs" -l socket -d 'The coordinator\'s control socket [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand jobs" -l all -d 'Every ended job the coordinator\'s journal keeps (7 days, or the newest 10,000 by default), not only the recent ones'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand jobs" -l json -d 'Print one JSON document instead of human output (errors too: {"error": ...})'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand jobs" -s h -l help -d 'Print help'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand result" -l socket -d 'The coordinator\'s control socket [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand result" -l json -d 'Print one JSON document instead of human output (errors too: {"error": ...})'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand result" -s h -l help -d 'Print help'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand parallel" -l socket -d 'The coordinator\'s control socket [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand parallel" -l json -d 'Print one JSON document instead of human output (errors too: {"error": ...})'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand rerun" -l verify -d 'The share of chunks (0 to 1) also run on a second worker and compared bit for bit; a mismatch is decided by a third [default: the coordinator\'s --verify]' -r
complete -c marmotctl -n "__fish_marmotctl_using_subcommand rerun" -l socket -d 'The coordinator\'s control socket [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand rerun" -l detach -d 'Print the job id and return at once: the job runs on; `marmotctl wait JOB` follows it, `marmotctl cancel JOB` stops it'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand rerun" -l json -d 'Print one JSON document instead of human output (errors too: {"error": ...})'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand rerun" -s h -l help -d 'Print help'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand wait" -l socket -d 'The coordinator\'s control socket [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand wait" -l json -d 'Print one JSON document instead of human output (errors too: {"error": ...})'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand wait" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand cancel" -l socket -d 'The coordinator\'s control socket [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand cancel" -l json -d 'Print one JSON document instead of human output (errors too: {"error": ...})'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand cancel" -s h -l help -d 'Print help'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand exit" -l socket -d 'The coordinator\'s control socket [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand exit" -l all -d 'Stop every connected worker'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand exit" -l json -d 'Print one JSON document instead of human output (errors too: {"error": ...})'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand exit" -s h -l help -d 'Print help'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand clear" -l socket -d 'The coordinator\'s control socket [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand clear" -l json -d 'Print one JSON document instead of human output (errors too: {"error": ...})'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand clear" -s h -l help -d 'Print help'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand revoke" -l socket -d 'The coordinator\'s control socket [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand revoke" -l json -d 'Print one JSON document instead of human output (errors too: {"error": ...})'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand revoke" -s h -l help -d 'Print help'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand update" -l parallel -d 'Workers updated at once (at most a quarter of them; the report says when fewer)' -r
complete -c marmotctl -n "__fish_marmotctl_using_subcommand update" -l socket -d 'The coordinator\'s control socket [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand update" -l keep-going -d 'Go on with the other workers after one rolls back (by default the rollout stops there, since the binary is likely bad)'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand update" -l allow-downgrade -d 'Install binaries older than what runs now'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand update" -l coordinator -d 'Then replace and restart the coordinator too (workers reconnect on their own)'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand update" -l json -d 'Print one JSON document instead of human output (errors too: {"error": ...})'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand update" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand join-token" -l socket -d 'The coordinator\'s control socket [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand join-token" -l rotate -d 'Make a new token; earlier ones stop working for new joins'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand join-token" -l json -d 'Print one JSON document instead of human output (errors too: {"error": ...})'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand join-token" -s h -l help -d 'Print help'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand dashboard" -l port -d 'The local port [default: one the system picks]' -r
complete -c marmotctl -n "__fish_marmotctl_using_subcommand dashboard" -l socket -d 'The coordinator\'s control socket [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand dashboard" -l json -d 'Print one JSON document instead of human output (errors too: {"error": ...})'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand dashboard" -s h -l help -d 'Print help'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand dashboard-token" -l socket -d 'The coordinator\'s control socket [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand dashboard-token" -l rotate -d 'Make a new one in place of the old, which stops working at once'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand dashboard-token" -l json -d 'Print one JSON document instead of human output (errors too: {"error": ...})'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand dashboard-token" -s h -l help -d 'Print help'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand logs" -l since -d 'Only lines logged within this long, e.g. 10m or 2h' -r
complete -c marmotctl -n "__fish_marmotctl_using_subcommand logs" -s n -l lines -d 'At most this many of the latest lines (before following)' -r
complete -c marmotctl -n "__fish_marmotctl_using_subcommand logs" -l socket -d 'The coordinator\'s control socket [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand logs" -s f -l follow -d 'Keep printing lines as they come (Ctrl-C stops)'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand logs" -l json -d 'Print one JSON document instead of human output (errors too: {"error": ...})'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand logs" -s h -l help -d 'Print help'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand top" -l socket -d 'The coordinator\'s control socket [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand top" -l once -d 'Print one picture and exit (for scripts, or a terminal that is not one)'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand top" -l json -d 'Print one JSON document instead of human output (errors too: {"error": ...})'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand top" -s h -l help -d 'Print help'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand completions" -l socket -d 'The coordinator\'s control socket [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand completions" -l json -d 'Print one JSON document instead of human output (errors too: {"error": ...})'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand completions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand man-pages" -l socket -d 'The coordinator\'s control socket [default: /run/marmot/marmotd.sock as root, else $XDG_RUNTIME_DIR/marmot/marmotd.sock]' -r -F
complete -c marmotctl -n "__fish_marmotctl_using_subcommand man-pages" -l json -d 'Print one JSON document instead of human output (errors too: {"error": ...})'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand man-pages" -s h -l help -d 'Print help'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand help; and not __fish_seen_subcommand_from status workers ping run bench jobs result parallel rerun wait cancel exit clear revoke update join-token dashboard dashboard-token logs top completions man-pages help" -f -a "status" -d 'The coordinator\'s state: workers, slots in use, chunks queued, jobs running'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand help; and not __fish_seen_subcommand_from status workers ping run bench jobs result parallel rerun wait cancel exit clear revoke update join-token dashboard dashboard-token logs top completions man-pages help" -f -a "workers" -d 'The connected workers'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand help; and not __fish_seen_subcommand_from status workers ping run bench jobs result parallel rerun wait cancel exit clear revoke update join-token dashboard dashboard-token logs top completions man-pages help" -f -a "ping" -d 'Round-trip time to each worker (all, or those named); exits 1 if any timed out'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand help; and not __fish_seen_subcommand_from status workers ping run bench jobs result parallel rerun wait cancel exit clear revoke update join-token dashboard dashboard-token logs top completions man-pages help" -f -a "run" -d 'Run a task on the cluster and print its result'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand help; and not __fish_seen_subcommand_from status workers ping run bench jobs result parallel rerun wait cancel exit clear revoke update join-token dashboard dashboard-token logs top completions man-pages help" -f -a "bench" -d 'Score every worker\'s slots with the pi kernel'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand help; and not __fish_seen_subcommand_from status workers ping run bench jobs result parallel rerun wait cancel exit clear revoke update join-token dashboard dashboard-token logs top completions man-pages help" -f -a "jobs" -d 'Running and recent jobs, with what each was asked to do'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand help; and not __fish_seen_subcommand_from status workers ping run bench jobs result parallel rerun wait cancel exit clear revoke update join-token dashboard dashboard-token logs top completions man-pages help" -f -a "result" -d 'Print an ended job\'s result again (a job\'s result is kept for 7 days by default)'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand help; and not __fish_seen_subcommand_from status workers ping run bench jobs result parallel rerun wait cancel exit clear revoke update join-token dashboard dashboard-token logs top completions man-pages help" -f -a "parallel" -d 'GNU parallel\'s command line, its jobs run on the cluster: `marmotctl parallel gzip ::: *.txt`. Options and replacement strings as `man parallel` says; what marmot does not do is refused with the reason'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand help; and not __fish_seen_subcommand_from status workers ping run bench jobs result parallel rerun wait cancel exit clear revoke update join-token dashboard dashboard-token logs top completions man-pages help" -f -a "rerun" -d 'Run a pi, prime or count job again, as it was asked for: for a job whose results came in part from a worker later caught lying (`marmotctl jobs` says so)'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand help; and not __fish_seen_subcommand_from status workers ping run bench jobs result parallel rerun wait cancel exit clear revoke update join-token dashboard dashboard-token logs top completions man-pages help" -f -a "wait" -d 'Follow a job to its end (with a progress bar) and print its result'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand help; and not __fish_seen_subcommand_from status workers ping run bench jobs result parallel rerun wait cancel exit clear revoke update join-token dashboard dashboard-token logs top completions man-pages help" -f -a "cancel" -d 'Cancel a running job'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand help; and not __fish_seen_subcommand_from status workers ping run bench jobs result parallel rerun wait cancel exit clear revoke update join-token dashboard dashboard-token logs top completions man-pages help" -f -a "exit" -d 'Tell workers to hand back their running chunks and exit; the coordinator keeps running'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand help; and not __fish_seen_subcommand_from status workers ping run bench jobs result parallel rerun wait cancel exit clear revoke update join-token dashboard dashboard-token logs top completions man-pages help" -f -a "clear" -d 'Let a quarantined worker take chunks again (after its results were contradicted by two other workers: check its RAM, e.g. with memtest86+)'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand help; and not __fish_seen_subcommand_from status workers ping run bench jobs result parallel rerun wait cancel exit clear revoke update join-token dashboard dashboard-token logs top completions man-pages help" -f -a "revoke" -d 'Revoke a worker\'s certificate: it is disconnected and refused from now on (for a lost or stolen laptop). Its name is free again; rotate the join token too if the machine had it (`marmotctl join-token --rotate`)'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand help; and not __fish_seen_subcommand_from status workers ping run bench jobs result parallel rerun wait cancel exit clear revoke update join-token dashboard dashboard-token logs top completions man-pages help" -f -a "update" -d 'Roll a new marmotd over the workers (and with --coordinator, the coordinator)'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand help; and not __fish_seen_subcommand_from status workers ping run bench jobs result parallel rerun wait cancel exit clear revoke update join-token dashboard dashboard-token logs top completions man-pages help" -f -a "join-token" -d 'Print the token a new worker joins with (`marmotd worker --token ...`)'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand help; and not __fish_seen_subcommand_from status workers ping run bench jobs result parallel rerun wait cancel exit clear revoke update join-token dashboard dashboard-token logs top completions man-pages help" -f -a "dashboard" -d 'Open the web dashboard: serve it on a local port through the control socket and print its URL (with a secret only that URL carries). Ctrl-C stops it'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand help; and not __fish_seen_subcommand_from status workers ping run bench jobs result parallel rerun wait cancel exit clear revoke update join-token dashboard dashboard-token logs top completions man-pages help" -f -a "dashboard-token" -d 'Make the token the coordinator\'s `--http` dashboard asks for: shown once, the coordinator keeps only its hash'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand help; and not __fish_seen_subcommand_from status workers ping run bench jobs result parallel rerun wait cancel exit clear revoke update join-token dashboard dashboard-token logs top completions man-pages help" -f -a "logs" -d 'Print the log lines the workers sent (and the coordinator\'s own), oldest first'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand help; and not __fish_seen_subcommand_from status workers ping run bench jobs result parallel rerun wait cancel exit clear revoke update join-token dashboard dashboard-token logs top completions man-pages help" -f -a "top" -d 'The cluster live in the terminal: workers, jobs and events (q quits)'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand help; and not __fish_seen_subcommand_from status workers ping run bench jobs result parallel rerun wait cancel exit clear revoke update join-token dashboard dashboard-token logs top completions man-pages help" -f -a "completions" -d 'Print a shell completion script for bash, zsh or fish'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand help; and not __fish_seen_subcommand_from status workers ping run bench jobs result parallel rerun wait cancel exit clear revoke update join-token dashboard dashboard-token logs top completions man-pages help" -f -a "man-pages" -d 'Write the man pages into DIR (used to package and install them)'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand help; and not __fish_seen_subcommand_from status workers ping run bench jobs result parallel rerun wait cancel exit clear revoke update join-token dashboard dashboard-token logs top completions man-pages help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand help; and __fish_seen_subcommand_from run" -f -a "pi" -d 'Monte Carlo estimate of pi'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand help; and __fish_seen_subcommand_from run" -f -a "prime" -d 'Is N prime? Prints a factor if not; the first chunk that finds one ends the job'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand help; and __fish_seen_subcommand_from run" -f -a "count" -d 'How often a letter occurs: in random letters, inline text, or a file'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand help; and __fish_seen_subcommand_from run" -f -a "freefall" -d 'A body thrown up, every dt seconds until it lands: `t y` lines (gnuplot-ready) and a plot, streamed in order while the cluster computes them'
complete -c marmotctl -n "__fish_marmotctl_using_subcommand help; and __fish_seen_subcommand_from run" -f -a "cmd" -d 'Your own command once per input, on free worker slots, in the manner of GNU parallel: `marmotctl run cmd --input-files \'*.log\' -- gzip -9 {}`, `marmotctl run cmd -- echo {} ::: a b c`. Exits with the number of failed units (at most 101)'

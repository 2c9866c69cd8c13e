#!/usr/bin/env bash
# Runs one round as local processes: the central and AGENCIES agencies. Each
# process prefixes its own lines like docker compose ("server   | ...",
# "client3  | ...", through SERVER_LOG_PREFIX and CLI_LOG_PREFIX) and appends
# them, one write per line, to one file, RUN_DIR/run.log, which is shown on
# the terminal as it grows: lines appear in the order they were logged, so the
# central's draw comes before any agency's winners. Expects bin/ built and
# DATA_DIR/agency-N.csv prepared (`make run` does both).
#
#   AGENCIES=5 ./scripts/run-local.sh
#
# Every run is a fresh round: the bets file and its journals (RUN_DIR/bets.csv,
# bets.csv.finished, bets.csv.operator) are removed first, unless
# RESUME=1 (continue a round that stopped half way). Exit status:
#   0    every agency exited 0 having received its winners, the central's
#        bets file, recounted by `bin/dataset winners -store`, gives each agency
#        as many, and the round's digest in the central's draw line
#        (digesto_ronda) is `bin/dataset digest -dir DATA_DIR`'s (the last line
#        says so, or that the digest is unchecked when SERVER_LOG_LEVEL hides
#        that line); with HOLD=1, also after the central, kept up for its
#        status page, was stopped on request (Ctrl-C, SIGTERM)
#   1    the port (or, with HOLD=1, the status page's) is in use or another run
#        uses RUN_DIR (nothing is started or removed), the central exited or
#        could not start, an agency failed or exited without its winners, the
#        recount disagrees with an agency's winners or cannot read the bets
#        file, or the central's draw line has no round digest or another than
#        the agency files'; everything started is stopped, and the last lines
#        say what failed, its last line and exit status, and how to continue
#        the round
#   2    a setting this script reads is wrong (nothing is started)
#   130  interrupted (Ctrl-C) before the round was over; every process started
#        here is stopped first
#   143  terminated (SIGTERM), likewise
#
# Mutual TLS is on: the central and each agency get their certificates from
# CERTS_DIR (`make certs` writes them), and the central its revocation list,
# revoked.pem, which it reads again on `bin/server reload` or SIGHUP; TLS=0
# runs in plaintext, for development.
#
# The central's status page and Prometheus metrics are served at
# SERVER_ADMIN_ADDRESS (127.0.0.1:9090; off turns them off) while the round
# runs; HOLD=1 keeps the central up after it, until Ctrl-C. A port already in
# use there is said before anything starts: the round runs without the page,
# or, with HOLD=1, does not run.
#
# Environment: AGENCIES (5), SERVER_HOST (127.0.0.1), SERVER_PORT (12345),
# SERVER_ADMIN_ADDRESS (127.0.0.1:9090), DATA_DIR (.data), RUN_DIR (.run), RESUME (unset),
# HOLD (unset), CERTS_DIR (.certs), TLS (1). Anything else (SERVER_LOG_LEVEL,
# CLI_BATCH_MAXAMOUNT, ...) reaches the processes as it is.
set -euo pipefail
cd "$(dirname "$0")/.."

agencies=${AGENCIES:-5}
port=${SERVER_PORT:-12345}
data=${DATA_DIR:-.data}
run=${RUN_DIR:-.run}
store=$run/bets.csv
log=$run/run.log
certs=${CERTS_DIR:-.certs}
tls=${TLS:-1}
resume=${RESUME:-}
hold=${HOLD:-}
admin=${SERVER_ADMIN_ADDRESS:-127.0.0.1:9090}

# say MESSAGE: a line of this script's, on its standard error. While the
# processes' lines are shown, that is run.log (see below), so that the line
# comes after what it is about.
say() { echo "run-local: $*" >&2; }

[[ $agencies =~ ^[1-9][0-9]*$ ]] || { say "AGENCIES=$agencies: want a whole number, 1 or more"; exit 2; }
[[ $tls =~ ^[01]$ ]] || { say "TLS=$tls: want 0 or 1"; exit 2; }
[[ $resume =~ ^1?$ ]] || { say "RESUME=$resume: want 1 or nothing"; exit 2; }
[[ $hold =~ ^1?$ ]] || { say "HOLD=$hold: want 1 or nothing"; exit 2; }
for bin in bin/server bin/client bin/dataset; do
	[ -x "$bin" ] || { say "$bin missing: run 'make build' (or 'make run')"; exit 2; }
done
for ((id = 1; id <= agencies; id++)); do
	[ -f "$data/agency-$id.csv" ] || { say "$data/agency-$id.csv missing: run 'make data AGENCIES=$agencies' (or 'make run')"; exit 2; }
	if [ "$tls" != 0 ] && [ ! -f "$certs/agency-$id.pem" ]; then
		say "$certs/agency-$id.pem missing: run 'make certs AGENCIES=$agencies' (or 'make run'), or TLS=0 for plaintext"
		exit 2
	fi
done

# answers HOST PORT: something accepts connections there.
answers() { timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null; }

host=${SERVER_HOST:-127.0.0.1}
# Before anything is removed: a port that answers belongs to someone else (maybe
# a central working on these very files), and the central could not bind it.
if answers "$host" "$port"; then
	say "port $port is already in use on $host: 'ss -ltnp \"sport = :$port\"' names the process; SERVER_PORT=... picks another"
	say "FAILED"
	exit 1
fi

# The status page: its URL (a listener on every interface is reached on
# loopback), and whether its port is free. Port 0 is one the central picks:
# its escuchar_admin line gives the URL.
admin_url=
if [ "${admin,,}" = off ]; then
	if [ "$hold" = 1 ]; then
		say "HOLD=1 keeps the central up for its status page, but SERVER_ADMIN_ADDRESS=off turns the page off"
		exit 2
	fi
	say "status page and metrics: off (SERVER_ADMIN_ADDRESS=off)"
else
	case $admin in
	:*) admin_url=127.0.0.1$admin ;;
	0.0.0.0:*) admin_url=127.0.0.1:${admin#0.0.0.0:} ;;
	"[::]:"*) admin_url="[::1]:${admin#"[::]:"}" ;;
	*) admin_url=$admin ;;
	esac
	admin_port=${admin_url##*:}
	admin_host=${admin_url%:*}
	admin_host=${admin_host#[}
	admin_host=${admin_host%]}
	if [ "$admin_port" != 0 ] && answers "$admin_host" "$admin_port"; then
		taken="port $admin_port is already in use on $admin_host: 'ss -ltnp \"sport = :$admin_port\"' names the process; SERVER_ADMIN_ADDRESS=127.0.0.1:0 takes any free one"
		if [ "$hold" = 1 ]; then
			say "the status page cannot be served: $taken"
			say "FAILED"
			exit 1
		fi
		say "status page and metrics: off for this round: $taken"
		admin=off admin_url=
	elif [ "$admin_port" = 0 ]; then
		admin_url=
		say "status page and metrics on a port the central picks: its escuchar_admin line gives the URL"
	elif [ "$hold" = 1 ]; then
		say "status page and metrics at http://$admin_url/ (/status.json, /metrics, /healthz), kept up after the round until Ctrl-C (HOLD=1)"
	else
		say "status page and metrics at http://$admin_url/ (/status.json, /metrics, /healthz) while the round runs; HOLD=1 keeps them up after it"
	fi
fi

mkdir -p "$run"
# One run per run directory: a second one would remove the first one's files.
# The lock is held as long as any process of this run lives (they inherit it).
exec {lock}>"$run/.lock"
if command -v flock >/dev/null && ! flock -n "$lock"; then
	say "another run is using $run (RUN_DIR=... gives this one its own)"
	exit 1
fi
if [ "$resume" = 1 ]; then
	say "RESUME=1: continuing the round in $store"
else
	rm -f "$store" "$store.finished" "$store.operator"
fi
# The previous run's lines stay one run longer, as run.log.1.
rm -f "$run"/server.log "$run"/client*.log
if [ -f "$log" ]; then mv -f "$log" "$log.1"; fi
: >"$log"
exec {logfd}>>"$log"

# prefix NAME: what starts each of NAME's lines, "server   | ".
prefix() { printf '%-8s | ' "$1"; }
# lines_of NAME: NAME's lines in run.log, without their prefix.
lines_of() { sed -n "s/^$(prefix "$1")//p" "$log"; }

# The follower shows run.log on the terminal from its first line, until the
# sentinel ends (stop_follow); then it reads what is left and exits. Both ignore
# Ctrl-C, so that the shutdown's last lines are still shown, and the sentinel
# ends by itself within a second of this script, however it ended.
# (Neither holds the lock or run.log open: a sleep left over from the sentinel
# must not keep the next run out of RUN_DIR, nor the terminal's output open.)
(
	exec {lock}>&- {logfd}>&- </dev/null >/dev/null 2>&1
	trap '' INT TERM
	while kill -0 $$ 2>/dev/null; do sleep 1; done
) &
sentinel=$!
(
	exec {lock}>&- {logfd}>&- </dev/null
	trap '' INT TERM
	exec tail -n +1 -s 0.1 --pid="$sentinel" -f "$log"
) &
follower=$!
# This script's own standard error joins run.log meanwhile: its lines, and
# whatever bash says of a process killed by a signal, come in order.
exec {terminal}>&2 2>&"$logfd"

# stop_follow: wait until the follower has shown every line of run.log; this
# script's lines go to the terminal directly from then on.
stop_follow() {
	[ -n "$follower" ] || return 0
	exec 2>&"$terminal"
	{ kill -KILL "$sentinel" && wait "$sentinel"; } 2>/dev/null || true
	wait "$follower" 2>/dev/null || true
	follower=
}

# start NAME VAR=value... COMMAND: runs COMMAND in the background with those
# variables, its standard output appended to run.log (the command prefixes its
# own lines) and its standard error (a configuration mistake, a crash) too,
# prefixed by a printer. Sets started (the command's pid) and records the
# printer's pid, so that its last lines can be awaited. The printer ignores
# Ctrl-C: it ends when COMMAND's standard error does.
printers=()
start() {
	local name=$1 err p
	shift
	p=$(prefix "$name")
	exec {err}> >(
		exec {terminal}>&-
		trap '' INT TERM
		exec sed -u "s/^/$p/" >&"$logfd"
	)
	printers+=($!)
	# Its own session: a Ctrl-C at the terminal reaches this script only, which
	# then stops every process in order (agencies first) and exits 130.
	setsid env "$@" >&"$logfd" 2>&"$err" {terminal}>&- &
	started=$!
	exec {err}>&-
}

alive() { kill -0 "$1" 2>/dev/null; }

# address HOST PORT: host:port, with an IPv6 address in brackets.
address() {
	case $1 in
	*:*) echo "[$1]:$2" ;;
	*) echo "$1:$2" ;;
	esac
}

# how STATUS: "exited with status N", or the signal that killed the process.
how() {
	if [ "$1" -gt 128 ] && kill -l "$(($1 - 128))" >/dev/null 2>&1; then
		echo "was killed by SIG$(kill -l "$(($1 - 128))") (exit status $1)"
	else
		echo "exited with status $1"
	fi
}

server_pid=
agency_pids=()
tick=
# stop_all: the agencies first, then the central (so no agency sees its central
# go away and starts retrying), each with SIGTERM (a graceful shutdown) and
# SIGKILL for whatever is left after 5 s; then the printers drain.
stop_all() {
	# A process started just before a Ctrl-C may not be recorded yet: it is $!.
	local last=${!:-}
	if [ -n "$last" ] && [[ " $server_pid ${agency_pids[*]} ${printers[*]} $sentinel $follower $tick " != *" $last "* ]]; then
		agency_pids+=("$last")
	fi
	stop "${agency_pids[@]}"
	stop $server_pid
	drain
}

# stop PID...: SIGTERM, then SIGKILL to whatever still runs 5 s later.
stop() {
	local pid live t
	# (|| true: a process may end between the check and the kill)
	for pid in "$@"; do
		alive "$pid" && kill -TERM "$pid" 2>/dev/null || true
	done
	for ((t = 0; t < 50; t++)); do
		live=0
		for pid in "$@"; do alive "$pid" && live=1; done
		[ $live -eq 0 ] && return 0
		sleep 0.1
	done
	for pid in "$@"; do
		alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
	done
	return 0
}

# drain: reap the processes and wait until their standard error has been written.
drain() {
	local pid
	for pid in $server_pid "${agency_pids[@]}" "${printers[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
}

# last_line NAME: NAME's last ERROR line (e.g. the port in use), else its last line.
last_line() {
	local lines last
	lines=$(lines_of "$1")
	last=$(grep -E '^[0-9-]+ [0-9:]+ ERROR ' <<<"$lines" | tail -n 1 || true)
	[ -n "$last" ] || last=$(tail -n 1 <<<"$lines")
	echo "${last:-(none)}"
}

# resume_hint: the command that continues this round where it stopped.
resume_hint() {
	local cmd="make run RESUME=1"
	[ "$agencies" = 5 ] || cmd+=" AGENCIES=$agencies"
	[ "$tls" = 1 ] || cmd+=" TLS=0"
	[ "$run" = .run ] || cmd+=" RUN_DIR=$run"
	[ "$agencies" = 5 ] || cmd+=" (and this run's BETS and SEED)"
	echo "$cmd"
}

# fail WHAT [AGENCY]: stop everything, then end with a summary: what failed
# (and how it exited), its last line and the central's, where every line is,
# and, once the round had begun, how to continue it; exit 1.
round_begun=
fail() {
	trap '' INT TERM
	trap - EXIT
	say "$1: stopping every process"
	stop_all
	say "FAILED: $1"
	if [ -n "${2:-}" ]; then
		say "  agency $2's last line: $(last_line "client$2")"
	fi
	say "  the central's last line: $(last_line server)"
	say "  every line of this run: $log (one process's: grep '^${2:+client}${2:-server} ' $log)"
	if [ -n "$round_begun" ] && [ -s "$store" ]; then
		say "  the central kept every bet it acknowledged in $store: '$(resume_hint)' continues this round"
	elif [ -n "$round_begun" ]; then
		say "  no bet was stored: once what the last lines say is fixed, 'make run' starts the round again"
	fi
	stop_follow
	exit 1
}

interrupted() {
	local sig=$1 code=$2
	trap '' INT TERM
	trap - EXIT
	say "interrupted (SIG$sig): stopping every process this run started"
	stop_all
	say "stopped; no winners were announced by this run"
	if [ -n "$round_begun" ] && [ -s "$store" ]; then
		say "'$(resume_hint)' continues this round"
	fi
	stop_follow
	# Die of the signal, so that whoever ran us (make, a shell loop) stops too.
	trap - "$sig"
	kill -"$sig" $$
	exit "$code"
}
trap 'interrupted INT 130' INT
trap 'interrupted TERM 143' TERM
# Whatever else ends the script (set -e), nothing it started outlives it.
trap 'stop_all; stop_follow' EXIT

# The central, with one variable per line.
central_env=(
	SERVER_HOST="$host"
	SERVER_PORT="$port"
	SERVER_AGENCIES="$agencies"
	SERVER_STORAGE_PATH="$store"
	SERVER_ADMIN_ADDRESS="$admin"
	SERVER_LOG_PREFIX="$(prefix server)"
)
if [ "$tls" != 0 ]; then
	central_env+=(
		SERVER_TLS_CERT="$certs/central.pem"
		SERVER_TLS_KEY="$certs/central-key.pem"
		SERVER_TLS_CLIENT_CA="$certs/ca.pem"
	)
	# make certs keeps it; a directory made before it existed has none.
	if [ -f "$certs/revoked.pem" ]; then
		central_env+=(SERVER_TLS_REVOKED="$certs/revoked.pem")
	fi
fi
start server "${central_env[@]}" ./bin/server
server_pid=$started

# Agencies start once the central listens, so none of them talks to whatever
# else holds the port. A central that exits meanwhile (the port is in use) is
# seen within 0.1 s. At a log level that hides the listening line, the wait
# ends after 5 s and the agencies' own retries take over.
for ((t = 0; t < 50; t++)); do
	alive "$server_pid" || break
	grep -qs "^$(prefix server).*action: escuchar | result: success" "$log" && break
	sleep 0.1
done
if ! alive "$server_pid"; then
	wait "$server_pid" 2>/dev/null && status=0 || status=$?
	fail "the central $(how $status) before the agencies started"
fi
round_begun=1

declare -A agency_of
for ((id = 1; id <= agencies; id++)); do
	# One agency, with one variable per line.
	agency_env=(
		CLI_ID="$id"
		CLI_SERVER_ADDRESS="$(address "$host" "$port")"
		CLI_DATA_PATH="$data/agency-$id.csv"
		CLI_LOG_PREFIX="$(prefix "client$id")"
	)
	if [ "$tls" != 0 ]; then
		# Its own key pair and the CA, nothing of another agency's.
		agency_env+=(
			CLI_TLS_CERT="$certs/agency-$id.pem"
			CLI_TLS_KEY="$certs/agency-$id-key.pem"
			CLI_TLS_CA="$certs/ca.pem"
		)
	fi
	start "client$id" "${agency_env[@]}" ./bin/client
	agency_pids+=("$started")
	agency_of[$started]=$id
done

# field and round_digest: the round's digest in the draw line, checked.
# shellcheck source=scripts/round-digest.sh
. scripts/round-digest.sh # the working directory is the repository's root

# winners_of ID: the number in agency ID's winners line, or nothing. An agency
# exits 0 when it is told to stop, too: success is its winners line.
winners_of() {
	local line
	line=$(lines_of "client$1" | grep -o 'action: consulta_ganadores | result: success | cant_ganadores: [0-9]*' | tail -n 1 || true)
	echo "${line##* }"
}

# next_ended: sets ended and status to a process of the central and pending
# that has ended, waiting for one if none has. Each is looked at first: bash
# (5.2) forgets a process killed by a signal once it has said so ("Killed"),
# and wait -n then waits for the others, forever if they wait for that one. A
# tick of half a second bounds the wait for the same reason.
next_ended() {
	local pid
	ended=
	for pid in "$server_pid" "${pending[@]}"; do
		if ! alive "$pid"; then
			wait "$pid" 2>/dev/null && status=0 || status=$?
			ended=$pid
			return 0
		fi
	done
	sleep 0.5 {lock}>&- {logfd}>&- {terminal}>&- </dev/null >/dev/null 2>&1 &
	tick=$!
	wait -n -p ended "$server_pid" "${pending[@]}" "$tick" 2>/dev/null && status=0 || status=$?
	[ "$ended" != "$tick" ] || ended=
}

# Wait for whichever process ends first: the central ending before every agency
# did, or an agency failing, ends the round at once.
declare -A winners
pending=("${agency_pids[@]}")
while [ ${#pending[@]} -gt 0 ]; do
	next_ended
	# (a Ctrl-C wakes the wait too, but its trap ends the script)
	[ -n "$ended" ] || continue
	if [ "$ended" = "$server_pid" ]; then
		fail "the central $(how $status) while ${#pending[@]} agencies were still running"
	fi
	id=${agency_of[$ended]}
	[ "$status" -eq 0 ] || fail "agency $id $(how $status)" "$id"
	winners[$id]=$(winners_of "$id")
	[ -n "${winners[$id]}" ] || fail "agency $id exited with status 0 but without its winners (was it told to stop?)" "$id"
	next=()
	for pid in "${pending[@]}"; do [ "$pid" = "$ended" ] || next+=("$pid"); done
	pending=("${next[@]}")
done

# The central's answers against its own file, recounted with the course's
# LoadBets rather than the central's recovery: "agency N: bets B winners W ...".
# Every agency has its winners, so the draw is over and the file complete.
counted=$(./bin/dataset winners -store "$store" 2>&1) || fail "the recount of $store: $counted"
declare -A recounted
while read -r _ id _ _ _ won _; do
	if [ -n "$id" ]; then recounted[${id%:}]=$won; fi
done <<<"$counted"
list=()
for ((id = 1; id <= agencies; id++)); do
	if [ "${recounted[$id]:-0}" != "${winners[$id]}" ]; then
		fail "agency $id got ${winners[$id]} winners, but $store holds ${recounted[$id]:-0} of its winning bets" "$id"
	fi
	list+=("${winners[$id]}")
done

# The round's digest, in the central's draw line, against the files the
# agencies read.
sorteo=$(lines_of server | grep -E 'action: sorteo \| result: success( \||$)' | tail -n 1 || true)
checked=$(round_digest "$sorteo" "$data" "$agencies" "${SERVER_LOG_LEVEL:-}") && digested=0 || digested=$?
case $digested in
0)
	read -r round exclude <<<"$checked"
	digested=", and the round's digest $round equals bin/dataset digest of the agency files in $data${exclude:+ without agencies $exclude}"
	;;
2) digested="; $checked" ;;
*) fail "$checked" ;;
esac

verdict="every agency got its winners ($(
	IFS=,
	echo "${list[*]}"
) for agencies 1..$agencies); bets stored in $store, whose recount agrees$digested"

if [ "$hold" = 1 ]; then
	# The central stays up for its status page until Ctrl-C (or SIGTERM), which
	# stops it and ends the run with 0: the round succeeded.
	say "$verdict"
	line=$(lines_of server | grep -o 'action: escuchar_admin | result: success | .*url: [^ |]*' | tail -n 1 || true)
	if [ -z "$line" ]; then
		fail "HOLD=1, but the central serves no status page (its last line about it: $(lines_of server | grep 'escuchar_admin' | tail -n 1 || true))"
	fi
	held() {
		trap '' INT TERM
		trap - EXIT
		say "stopping the central (SIG$1)"
		stop "$server_pid"
		wait "$server_pid" 2>/dev/null && status=0 || status=$?
		drain
		if [ "$status" -ne 0 ]; then
			say "FAILED: the central's shutdown: it $(how $status); its last line: $(last_line server)"
			stop_follow
			exit 1
		fi
		say "stopped on request (SIG$1) after a successful round: $verdict"
		stop_follow
		exit 0
	}
	trap 'held INT' INT
	trap 'held TERM' TERM
	say "HOLD=1: the central stays up with its status page at ${line##*url: } (/status.json, /metrics, /healthz) until Ctrl-C"
	wait "$server_pid" 2>/dev/null && status=0 || status=$?
	fail "the central $(how $status) while held for its status page"
fi

# Every agency is done: the central shuts down cleanly (SIGKILL after 5 s).
trap '' INT TERM
stop "$server_pid"
wait "$server_pid" 2>/dev/null && status=0 || status=$?
drain
trap - EXIT
if [ "$status" -ne 0 ]; then
	say "FAILED: the central's shutdown: it $(how $status)"
	say "  the central's last line: $(last_line server)"
	stop_follow
	exit 1
fi
say "$verdict"
stop_follow

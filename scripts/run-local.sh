#!/usr/bin/env bash
# Runs one round as local processes: the central and AGENCIES agencies, their
# output prefixed like docker compose's ("server   | ...") and copied to
# RUN_DIR/<name>.log. Expects bin/ built and DATA_DIR/agency-N.csv prepared
# (`make run` does both).
#
#   AGENCIES=5 ./scripts/run-local.sh
#
# Every run is a fresh round: the bets file and its FINISH journal
# (RUN_DIR/bets.csv, RUN_DIR/bets.csv.finished) are removed first, unless
# RESUME=1 (continue a round whose central crashed). Exit status:
#   0    every agency exited 0 having received its winners, and the central's
#        bets file, recounted by `bin/dataset winners -store`, gives each agency
#        as many (the last line says so)
#   1    the port is in use or another run uses RUN_DIR (nothing is started or
#        removed), the central exited or could not start (its last log line is
#        printed), an agency failed, or the recount disagrees with an agency's
#        winners or cannot read the bets file; everything started is stopped
#   130  interrupted (Ctrl-C); every process started here is stopped first
#   143  terminated (SIGTERM), likewise
#
# Mutual TLS is on: the central and each agency get their certificates from
# CERTS_DIR (`make certs` writes them); TLS=0 runs in plaintext, for development.
#
# The central's status page and Prometheus metrics are served at
# SERVER_ADMIN_ADDRESS (127.0.0.1:9090; off turns them off); the URL is printed
# before anything starts.
#
# Environment: AGENCIES (5), SERVER_HOST (127.0.0.1), SERVER_PORT (12345),
# SERVER_ADMIN_ADDRESS (127.0.0.1:9090), DATA_DIR (.data), RUN_DIR (.run), RESUME (unset),
# CERTS_DIR (.certs), TLS (1). Anything else (SERVER_LOG_LEVEL, CLI_BATCH_MAXAMOUNT, ...)
# reaches the processes as it is.
set -euo pipefail
cd "$(dirname "$0")/.."

agencies=${AGENCIES:-5}
port=${SERVER_PORT:-12345}
data=${DATA_DIR:-.data}
run=${RUN_DIR:-.run}
store=$run/bets.csv
certs=${CERTS_DIR:-.certs}
tls=${TLS:-1}
admin=${SERVER_ADMIN_ADDRESS:-127.0.0.1:9090}

say() { echo "run-local: $*" >&2; }

[[ $agencies =~ ^[1-9][0-9]*$ ]] || { say "AGENCIES=$agencies: want a positive whole number"; exit 2; }
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

# The admin listener's URL: a listener on every interface is reached on loopback.
if [ "${admin,,}" = off ]; then
	say "status page and metrics: off (SERVER_ADMIN_ADDRESS=off)"
else
	case $admin in
	:*) admin_url=127.0.0.1$admin ;;
	0.0.0.0:*) admin_url=127.0.0.1:${admin#0.0.0.0:} ;;
	"[::]:"*) admin_url="[::1]:${admin#"[::]:"}" ;;
	*) admin_url=$admin ;;
	esac
	say "status page and metrics at http://$admin_url/ (/metrics, /healthz)"
fi

host=${SERVER_HOST:-127.0.0.1}
# Before anything is removed: a port that answers belongs to someone else (maybe
# a central working on these very files), and the central could not bind it.
if timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null; then
	say "port $port is already in use on $host: 'ss -ltnp \"sport = :$port\"' names the process; SERVER_PORT=... picks another"
	say "FAILED"
	exit 1
fi

mkdir -p "$run"
# One run per run directory: a second one would remove the first one's files.
# The lock is held as long as any process of this run lives (they inherit it).
exec {lock}>"$run/.lock"
if command -v flock >/dev/null && ! flock -n "$lock"; then
	say "another run is using $run (RUN_DIR=... gives this one its own)"
	exit 1
fi
if [ "${RESUME:-}" = 1 ]; then
	say "RESUME=1: continuing the round in $store"
else
	rm -f "$store" "$store.finished"
fi
rm -f "$run"/server.log "$run"/client*.log

prefix() { sed -u "s/^/$(printf '%-8s' "$1") | /"; }

# start NAME VAR=value... COMMAND: runs COMMAND in the background with those
# variables, its output (stdout and stderr) prefixed on the terminal and copied
# to $run/NAME.log. Sets started (the command's pid) and records the printer's
# pid, so that its last lines can be awaited. The printer ignores Ctrl-C: it
# ends when COMMAND's output does, so a shutdown's last lines are still shown
# (and COMMAND never writes to a closed pipe).
printers=()
start() {
	local name=$1 out
	shift
	exec {out}> >(
		trap '' INT TERM
		tee "$run/$name.log" | prefix "$name"
	)
	printers+=($!)
	# Its own session: a Ctrl-C at the terminal reaches this script only, which
	# then stops every process in order (agencies first) and exits 130.
	setsid env "$@" >&"$out" 2>&1 &
	started=$!
	exec {out}>&-
}

alive() { kill -0 "$1" 2>/dev/null; }

# address HOST PORT: host:port, with an IPv6 address in brackets.
address() {
	case $1 in
	*:*) echo "[$1]:$2" ;;
	*) echo "$1:$2" ;;
	esac
}

# how STATUS: "status N", or the signal that killed the process.
how() {
	if [ "$1" -gt 128 ] && kill -l "$(($1 - 128))" >/dev/null 2>&1; then
		echo "killed by SIG$(kill -l "$(($1 - 128))")"
	else
		echo "status $1"
	fi
}

server_pid=
agency_pids=()
# stop_all: the agencies first, then the central (so no agency sees its central
# go away and starts retrying), each with SIGTERM (a graceful shutdown) and
# SIGKILL for whatever is left after 5 s; then the printers drain.
stop_all() {
	# A process started just before a Ctrl-C may not be recorded yet: it is $!.
	local last=${!:-}
	if [ -n "$last" ] && [[ " $server_pid ${agency_pids[*]} ${printers[*]} " != *" $last "* ]]; then
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

# drain: reap the processes and wait until their output has been printed.
drain() {
	local pid
	for pid in $server_pid "${agency_pids[@]}" "${printers[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
}

# server_last_line: the central's last error (e.g. the port in use), else its last line.
server_last_line() {
	local last
	last=$(grep -s 'result: fail' "$run/server.log" | tail -n 1 || true)
	[ -n "$last" ] || last=$(tail -n 1 "$run/server.log" 2>/dev/null || true)
	say "the central's last line: ${last:-(none)}"
}

# fail MESSAGE [AGENCY]: stop everything, show the last words of the agency that
# failed (if one did) and of the central, exit 1.
fail() {
	trap '' INT TERM
	trap - EXIT
	say "$1"
	stop_all
	[ -z "${2:-}" ] || say "agency $2's last line: $(tail -n 1 "$run/client$2.log" 2>/dev/null)"
	server_last_line
	say "FAILED"
	exit 1
}

interrupted() {
	local sig=$1 code=$2
	trap '' INT TERM
	trap - EXIT
	say "interrupted (SIG$sig): stopping every process this run started"
	stop_all
	say "stopped; no winners were announced by this run"
	# Die of the signal, so that whoever ran us (make, a shell loop) stops too.
	trap - "$sig"
	kill -"$sig" $$
	exit "$code"
}
trap 'interrupted INT 130' INT
trap 'interrupted TERM 143' TERM
# Whatever else ends the script (set -e), nothing it started outlives it.
trap 'stop_all' EXIT

# The central, with one variable per line.
central_env=(
	SERVER_HOST="$host"
	SERVER_PORT="$port"
	SERVER_AGENCIES="$agencies"
	SERVER_STORAGE_PATH="$store"
	SERVER_ADMIN_ADDRESS="$admin"
)
if [ "$tls" != 0 ]; then
	central_env+=(
		SERVER_TLS_CERT="$certs/central.pem"
		SERVER_TLS_KEY="$certs/central-key.pem"
		SERVER_TLS_CLIENT_CA="$certs/ca.pem"
	)
fi
start server "${central_env[@]}" ./bin/server
server_pid=$started

# Agencies start once the central listens, so none of them talks to whatever
# else holds the port. A central that exits meanwhile (the port is in use) is
# seen within 0.1 s. At a log level that hides the listening line, the wait
# ends after 5 s and the agencies' own retries take over.
for ((t = 0; t < 50; t++)); do
	alive "$server_pid" || break
	grep -qs 'action: escuchar | result: success' "$run/server.log" && break
	sleep 0.1
done
if ! alive "$server_pid"; then
	wait "$server_pid" 2>/dev/null && status=0 || status=$?
	fail "the central exited ($(how $status)) before the agencies started"
fi

declare -A agency_of
for ((id = 1; id <= agencies; id++)); do
	# One agency, with one variable per line.
	agency_env=(
		CLI_ID="$id"
		CLI_SERVER_ADDRESS="$(address "$host" "$port")"
		CLI_DATA_PATH="$data/agency-$id.csv"
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

# Wait for whichever process ends first: the central ending before every agency
# did, or an agency failing, ends the round at once.
pending=("${agency_pids[@]}")
while [ ${#pending[@]} -gt 0 ]; do
	ended=
	wait -n -p ended "$server_pid" "${pending[@]}" 2>/dev/null && status=0 || status=$?
	# (a Ctrl-C wakes the wait too, but its trap ends the script)
	[ -n "$ended" ] || fail "lost track of the processes (wait: status $status)"
	if [ "$ended" = "$server_pid" ]; then
		fail "the central exited ($(how $status)) while ${#pending[@]} agencies were still running"
	fi
	[ "$status" -eq 0 ] || fail "agency ${agency_of[$ended]} failed ($(how $status))" "${agency_of[$ended]}"
	next=()
	for pid in "${pending[@]}"; do [ "$pid" = "$ended" ] || next+=("$pid"); done
	pending=("${next[@]}")
done

# Every agency is done: the central shuts down cleanly (SIGKILL after 5 s).
trap '' INT TERM
stop "$server_pid"
wait "$server_pid" 2>/dev/null && status=0 || status=$?
drain
trap - EXIT
if [ "$status" -ne 0 ]; then
	server_last_line
	say "FAILED: the central's shutdown ended with $(how $status)"
	exit 1
fi

# An agency exits 0 when it is told to stop, too: success is each one's winners line.
winners=()
for ((id = 1; id <= agencies; id++)); do
	line=$(grep -o 'action: consulta_ganadores | result: success | cant_ganadores: [0-9]*' "$run/client$id.log" | tail -n 1 || true)
	[ -n "$line" ] || { say "FAILED: agency $id exited without its winners"; exit 1; }
	winners+=("${line##* }")
done

# The central's answers against its own file, recounted with the course's
# LoadBets rather than the central's recovery: "agency N: bets B winners W ...".
counted=$(./bin/dataset winners -store "$store" 2>&1) || { say "FAILED: the recount of $store: $counted"; exit 1; }
declare -A recounted
while read -r _ id _ _ _ won _; do
	if [ -n "$id" ]; then recounted[${id%:}]=$won; fi
done <<<"$counted"
for ((id = 1; id <= agencies; id++)); do
	if [ "${recounted[$id]:-0}" != "${winners[id - 1]}" ]; then
		say "FAILED: agency $id got ${winners[id - 1]} winners, but $store holds ${recounted[$id]:-0} of its winning bets"
		exit 1
	fi
done
say "every agency got its winners ($(
	IFS=,
	echo "${winners[*]}"
) for agencies 1..$agencies); bets stored in $store, whose recount agrees"

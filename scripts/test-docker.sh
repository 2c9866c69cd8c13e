#!/usr/bin/env bash
# The draw in real containers: `make test-docker` (which builds bin/ and the
# images first). Each step asserts on compose logs, container exit codes and
# the bets file on the volume, then prints PASS or FAIL; the last line is
# "N passed, M failed" and the exit status is non-zero on any failure.
#
#   generator        generar-compose.sh validates its arguments, and
#                    deployments/docker-compose.yaml is its output for N=5
#   five agencies    deployments/docker-compose.yaml on the official dataset
#                    (.data/dataset.zip): one draw, each agency's winners
#                    (2, 3, 3, 2, 0), exit codes 0, every bet on the volume
#   resume           down (keeping the volume) and up again: the agencies resume
#                    from the stored bets, nothing is stored twice, same winners
#   restart          the central is SIGKILLed while four agencies wait for the
#                    draw and its container started again: it resumes from the
#                    volume, the fifth agency comes, everyone gets its winners
#   make up          `make docker-compose-up` twice is two fresh rounds, and
#                    RESUME=1 continues the stored one; no noise on the way up
#   1 / 10 agencies  files generated into a temporary directory
#   stop while parked  four of five agencies wait for the draw; `stop -t 5`
#                    ends everything with exit 0 and logs every resource closed
#   validar-servidor succeeds against a live central, fails (bounded) when it
#                    is frozen, stopped, or its network is gone
#   cleanup          no container, volume or network of the test is left
#
# It uses the compose project "lottery-test" (so a `make docker-compose-up`
# project's bets volume is not touched), but the fixed container names
# (server, clientN) and network (lottery_net) mean it refuses to start while
# another project holds them. It rewrites .data/ (make data restores it).
#
# Environment: COMPOSE (the compose command; found when empty), DATASET
# (official zip, default .data/dataset.zip), TEST_BETS (bets per generated
# agency), TEST_WAIT (seconds allowed for each wait).
set -uo pipefail
cd "$(dirname "$0")/.."

PROJECT=lottery-test
NETWORK=lottery_net
DEFAULT_FILE=deployments/docker-compose.yaml
SERVER_IMAGE=${SERVER_IMAGE:-lottery-server:latest}
CLIENT_IMAGE=${CLIENT_IMAGE:-lottery-client:latest}
DATASET=${DATASET:-.data/dataset.zip}
BETS=${TEST_BETS:-5000}
WAIT=${TEST_WAIT:-120}
DATASET_BIN=./bin/dataset
STORE_IN_CONTAINER=/var/lib/lottery/bets.csv

if [ -z "${COMPOSE:-}" ]; then
	if docker compose version >/dev/null 2>&1; then
		COMPOSE="docker compose"
	elif command -v docker-compose >/dev/null 2>&1; then
		COMPOSE=docker-compose
	else
		echo "test-docker: neither 'docker compose' nor 'docker-compose' is installed" >&2
		exit 1
	fi
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/test-docker.XXXXXX")
files=()      # every compose file used, for the cleanup
repo_tmp=()   # temporary files written inside the repository
passed=0
failed=0
ok=1          # the current step's verdict

# compose FILE ARGS...: the compose command on FILE in the test's project.
compose() {
	local file=$1
	shift
	# shellcheck disable=SC2086 # COMPOSE may be two words
	$COMPOSE -p "$PROJECT" -f "$file" "$@"
}

# use FILE: remember FILE for the cleanup and start from nothing.
use() {
	use_files_only "$1"
	compose "$1" down -v --remove-orphans -t 1 >/dev/null 2>&1
}

# use_files_only FILE: remember FILE for the cleanup, keeping what runs.
use_files_only() {
	local f
	for f in "${files[@]}"; do [ "$f" = "$1" ] && return 0; done
	files+=("$1")
}

cleanup() {
	local f
	for f in "${files[@]}"; do
		[ -f "$f" ] && compose "$f" down -v --remove-orphans -t 1 >/dev/null 2>&1
	done
	# Whatever a failed step left without its compose file.
	docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" | xargs -r docker rm -f >/dev/null 2>&1
	docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | xargs -r docker volume rm >/dev/null 2>&1
	docker network ls -q --filter "label=com.docker.compose.project=$PROJECT" | xargs -r docker network rm >/dev/null 2>&1
	return 0
}

on_exit() {
	cleanup
	[ ${#repo_tmp[@]} -eq 0 ] || rm -f "${repo_tmp[@]}"
	rm -rf "$work"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# check DESCRIPTION COMMAND...: one assertion of the current step.
check() {
	local what=$1
	shift
	if "$@"; then
		echo "  ok      $what"
	else
		echo "  NOT OK  $what"
		ok=0
	fi
}

# quiet COMMAND...: runs COMMAND, showing its output only when it fails.
quiet() {
	"$@" >"$work/quiet.log" 2>&1 && return 0
	sed 's/^/          | /' "$work/quiet.log" >&2
	return 1
}

# step NAME FUNCTION: runs one step and prints its verdict.
step() {
	local name=$1
	shift
	echo "=== $name"
	ok=1
	"$@" || ok=0
	if [ $ok -eq 1 ]; then
		echo "PASS: $name"
		passed=$((passed + 1))
	else
		echo "FAIL: $name"
		failed=$((failed + 1))
	fi
}

eq() { [ "$1" = "$2" ] || { echo "          got '$1', want '$2'" >&2; return 1; }; }

# logs FILE SERVICE: the service's log lines without compose's "name | " prefix.
logs() { compose "$1" logs --no-color "$2" 2>/dev/null | sed -n 's/^[^|]*| //p'; }

# count FILE SERVICE REGEX: how many of the service's log lines match.
count() { logs "$1" "$2" | grep -cE "$3"; }

# state NAME: "status exitcode" of a container.
state() {
	local s
	s=$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}}' "$1" 2>/dev/null) || s="missing -"
	echo "$s"
}

# poll SECONDS COMMAND...: true as soon as COMMAND is, false after SECONDS.
poll() {
	local limit=$1 t
	shift
	for ((t = 0; t < limit; t++)); do
		"$@" && return 0
		sleep 1
	done
	"$@"
}

healthy() { [ "$(docker inspect -f '{{.State.Health.Status}}' server 2>/dev/null)" = healthy ]; }

# prepare_data N: .data/agency-1..N.csv (the official files when N=5, else
# generated), and the expectations: exp_bets[i], exp_win[i].
exp_bets=()
exp_win=()
prepare_data() {
	local n=$1 line i b w
	if [ "$n" = 5 ]; then
		"$DATASET_BIN" extract -zip "$DATASET" -out .data >/dev/null || return 1
	else
		"$DATASET_BIN" generate -agencies "$n" -bets "$BETS" -seed "$n" -out .data >/dev/null || return 1
	fi
	exp_bets=()
	exp_win=()
	while read -r line; do
		# agency N: bets B winners W documents ...
		read -r _ i b _ w _ <<<"$(echo "$line" | sed 's/^agency \([0-9]*\): bets \([0-9]*\) winners \([0-9]*\).*/x \1 \2 y \3 z/')"
		exp_bets[i]=$b
		exp_win[i]=$w
	done < <("$DATASET_BIN" winners -dir .data | grep '^agency [0-9]*: bets ')
	for ((i = 1; i <= n; i++)); do
		[ -n "${exp_bets[i]:-}" ] || { echo "  no expectation for agency $i" >&2; return 1; }
	done
}

# wait_agencies N: waits (bounded) until client1..clientN have exited.
wait_agencies() {
	local names=() i
	for ((i = 1; i <= $1; i++)); do names+=("client$i"); done
	timeout "$WAIT" docker wait "${names[@]}" >/dev/null
}

# bets_on_volume FILE N: copies the bets file out of the stopped server and
# compares it with the agencies' files, in total and agency by agency.
bets_on_volume() {
	local file=$1 n=$2 total=0 i
	rm -f "$work/bets.csv"
	check "bets file copied out of the server's volume" docker cp "server:$STORE_IN_CONTAINER" "$work/bets.csv"
	[ -f "$work/bets.csv" ] || return 1
	for ((i = 1; i <= n; i++)); do total=$((total + exp_bets[i])); done
	check "bets file holds every bet ($total rows)" eq "$(wc -l <"$work/bets.csv" | tr -d ' ')" "$total"
	local per
	per=$(cut -d, -f1 "$work/bets.csv" | sort -n | uniq -c | awk '{printf "%s:%s ", $2, $1}')
	local want=""
	for ((i = 1; i <= n; i++)); do [ "${exp_bets[i]}" -gt 0 ] && want+="$i:${exp_bets[i]} "; done
	check "bets file holds each agency's bets" eq "$per" "$want"
}

# full_draw FILE N [keep]: every agency of FILE sends its bets and gets its
# winners. With keep it starts on the bets volume as it is, and leaves the
# stopped containers and the volume to the caller.
full_draw() {
	local file=$1 n=$2 keep=${3:-} i
	[ -n "$keep" ] || use "$file"
	check "compose up -d" quiet compose "$file" up -d
	[ $ok -eq 1 ] || return 1
	check "the $n agencies exit within ${WAIT}s" wait_agencies "$n"
	for ((i = 1; i <= n; i++)); do
		check "client$i exited 0" eq "$(state "client$i")" "exited 0"
		check "client$i: cant_ganadores: ${exp_win[i]}" eq \
			"$(count "$file" "client$i" "action: consulta_ganadores \| result: success \| cant_ganadores: ${exp_win[i]}$")" 1
	done
	check "server expected $n agencies" eq "$(count "$file" server "action: config \| result: success .*\| agencies: $n \|")" 1
	check "exactly one 'action: sorteo | result: success'" eq \
		"$(count "$file" server "action: sorteo \| result: success( \||$)")" 1
	check "server still running and healthy" healthy
	check "compose stop -t 5" quiet compose "$file" stop -t 5
	check "server exited 0" eq "$(state server)" "exited 0"
	bets_on_volume "$file" "$n"
	[ -n "$keep" ] || compose "$file" down -v --remove-orphans -t 1 >/dev/null 2>&1
}

# --- the steps ---------------------------------------------------------------

step_generator() {
	local args bad out err rc
	for bad in "" "OUT" "OUT 0" "OUT 05" "OUT -1" "OUT abc" "OUT 1.5" "OUT 1000001" "OUT 1 2" "'' 3"; do
		out=$work/bad.yaml
		rm -f "$out" "$work/err"
		eval "args=($bad)"
		args=("${args[@]/#OUT/$out}")
		./scripts/generar-compose.sh "${args[@]}" >/dev/null 2>"$work/err"
		rc=$?
		err=$(cat "$work/err")
		check "generar-compose.sh ${bad:-(no arguments)}: exit 2, usage on stderr, nothing written" \
			eval '[ $rc -eq 2 ] && [[ $err == *usage:* ]] && [ ! -e "$out" ]'
	done

	local regen=deployments/.docker-compose.regen.$$.yaml
	repo_tmp+=("$regen")
	check "regenerate deployments/docker-compose.yaml (N=5)" ./scripts/generar-compose.sh "$regen" 5
	check "deployments/docker-compose.yaml is the generator's output for N=5" cmp -s "$regen" "$DEFAULT_FILE"
	[ $ok -eq 1 ] || diff -u "$DEFAULT_FILE" "$regen" | head -40

	local dev=docker-compose-test-$$.yaml
	repo_tmp+=("$dev")
	check "generar-compose.sh $dev 5 at the repository root" ./scripts/generar-compose.sh "$dev" 5
	check "$COMPOSE accepts it" quiet compose "$dev" config -q
	local resolved
	resolved=$(compose "$dev" config 2>/dev/null)
	check "its mounts resolve to this repository's .data/" \
		grep -qF -- "$(pwd -P)/.data/agency-5.csv" <<<"$resolved"
	check "$COMPOSE accepts deployments/docker-compose.yaml" quiet compose "$DEFAULT_FILE" config -q
}

step_five() {
	check "prepare .data/ for 5 agencies from $DATASET" prepare_data 5 || return 1
	check "dataset winners on the official data: 2 3 3 2 0" eq "${exp_win[*]:1:5}" "2 3 3 2 0"
	use "$DEFAULT_FILE"
	full_draw "$DEFAULT_FILE" 5 keep
	check "compose down, keeping the bets volume" quiet compose "$DEFAULT_FILE" down --remove-orphans -t 1
}

# The same draw again on the volume the previous step kept: the agencies resume
# from the bets the central holds, nothing is stored twice, same winners.
step_resume() {
	local i
	use_files_only "$DEFAULT_FILE"
	check "the bets volume is still there" quiet docker volume inspect "${PROJECT}_bets" || return 1
	full_draw "$DEFAULT_FILE" 5 keep
	for ((i = 1; i <= 5; i++)); do
		check "client$i resumed with its ${exp_bets[i]} bets already stored" eq \
			"$(count "$DEFAULT_FILE" "client$i" "action: conectar \| result: success .*\| almacenadas: ${exp_bets[i]} ")" 1
	done
	check "server: no bets stored this time" eq "$(count "$DEFAULT_FILE" server "action: apuesta_recibida")" 0
	compose "$DEFAULT_FILE" down -v --remove-orphans -t 1 >/dev/null 2>&1
}

recovered_four() {
	[ "$(count "$DEFAULT_FILE" server "action: recuperacion \| result: success .*\| agencias_finalizadas: 4( \||$)")" -ge 1 ]
}

# The central dies (SIGKILL) while four agencies wait for the draw, and its
# container is started again, as a restart policy or an operator would: it
# recovers the bets and the four FINISHes from the volume, the four reconnect,
# the fifth comes, and the one draw gives everyone its winners.
step_restart() {
	local file=$DEFAULT_FILE i
	check "prepare .data/ for 5 agencies" prepare_data 5 || return 1
	use "$file"
	check "compose up -d server client1..client4" quiet compose "$file" up -d server client1 client2 client3 client4
	[ $ok -eq 1 ] || return 1
	check "four agencies parked in espera_sorteo" poll "$WAIT" four_parked
	check "docker kill server (SIGKILL)" quiet docker kill server
	check "docker start server (the same container and volume)" quiet docker start server
	check "the central recovered four finished agencies from the volume" poll "$WAIT" recovered_four
	check "compose up -d client5" quiet compose "$file" up -d client5
	check "the 5 agencies exit within ${WAIT}s" wait_agencies 5
	for ((i = 1; i <= 5; i++)); do
		check "client$i exited 0" eq "$(state "client$i")" "exited 0"
		check "client$i: cant_ganadores: ${exp_win[i]}" eq \
			"$(count "$file" "client$i" "action: consulta_ganadores \| result: success \| cant_ganadores: ${exp_win[i]}$")" 1
	done
	check "exactly one 'action: sorteo | result: success'" eq \
		"$(count "$file" server "action: sorteo \| result: success( \||$)")" 1
	check "compose stop -t 5" quiet compose "$file" stop -t 5
	bets_on_volume "$file" 5
	compose "$file" down -v --remove-orphans -t 1 >/dev/null 2>&1
}

# make_up ARGS...: `make docker-compose-up` on the test's project, its output in
# $work/up.log; then waits for the five agencies.
make_up() {
	make --no-print-directory docker-compose-up COMPOSE_PROJECT_NAME="$PROJECT" COMPOSE_FILE="$DEFAULT_FILE" \
		DATASET="$DATASET" "$@" >"$work/up.log" 2>&1 || { sed 's/^/          | /' "$work/up.log" >&2; return 1; }
	wait_agencies 5
}

# make_round WHAT STORED: checks the round `make docker-compose-up` just ran:
# the central started from STORED bets, each agency found its bets stored (or
# none), every agency got its winners, and the way up was quiet.
make_round() {
	local what=$1 stored=$2 i almacenadas
	check "$what: no 'not found', deprecation or warning on the way up" eq \
		"$(grep -ciE 'not found|deprecated|warn' "$work/up.log")" 0
	[ $ok -eq 1 ] || sed 's/^/          | /' "$work/up.log" >&2
	check "$what: the central started from $stored stored bets" eq \
		"$(count "$DEFAULT_FILE" server "action: recuperacion \| result: success \| apuestas: $stored ")" 1
	for ((i = 1; i <= 5; i++)); do
		almacenadas=0
		[ "$stored" = 0 ] || almacenadas=${exp_bets[i]}
		check "$what: client$i found $almacenadas of its bets stored" eq \
			"$(count "$DEFAULT_FILE" "client$i" "action: conectar \| result: success .*\| almacenadas: $almacenadas ")" 1
		check "$what: client$i exited 0 with cant_ganadores: ${exp_win[i]}" eq "$(state "client$i") $(count "$DEFAULT_FILE" \
			"client$i" "action: consulta_ganadores \| result: success \| cant_ganadores: ${exp_win[i]}$")" "exited 0 1"
	done
}

step_make_up() {
	local total=0 i
	check "prepare the expectations for 5 agencies" prepare_data 5 || return 1
	for ((i = 1; i <= 5; i++)); do total=$((total + exp_bets[i])); done
	use "$DEFAULT_FILE"
	check "make docker-compose-up" make_up && make_round "first round" 0
	check "make docker-compose-up again" make_up && make_round "second round (fresh)" 0
	check "it said it removed the previous round's volume" grep -q "a fresh round: removing ${PROJECT}_bets" "$work/up.log"
	check "make docker-compose-up RESUME=1" make_up RESUME=1 && make_round "RESUME=1" "$total"
	check "RESUME=1: no bet stored again" eq "$(count "$DEFAULT_FILE" server "action: apuesta_recibida")" 0
	compose "$DEFAULT_FILE" down -v --remove-orphans -t 1 >/dev/null 2>&1
}

step_generated() {
	local n=$1 file=$work/docker-compose-$1.yaml
	check "generar-compose.sh $file $n" ./scripts/generar-compose.sh "$file" "$n" || return 1
	check "prepare .data/ for $n agencies (generated)" prepare_data "$n" || return 1
	full_draw "$file" "$n"
}

four_parked() {
	[ "$(count "$DEFAULT_FILE" server "action: fin_apuestas \| result: success")" -ge 4 ] &&
		[ "$(count "$DEFAULT_FILE" server "action: espera_sorteo \| result: in_progress")" -ge 4 ]
}

step_stop_parked() {
	local file=$DEFAULT_FILE i name start elapsed
	check "prepare .data/ for 5 agencies" prepare_data 5 || return 1
	use "$file"
	check "compose up -d server client1..client4 (client5 never comes)" \
		quiet compose "$file" up -d server client1 client2 client3 client4
	[ $ok -eq 1 ] || return 1
	check "four fin_apuestas and four agencies parked in espera_sorteo" poll "$WAIT" four_parked
	check "no draw without the fifth agency" eq "$(count "$file" server "action: sorteo")" 0
	start=$SECONDS
	check "compose stop -t 5" quiet compose "$file" stop -t 5
	elapsed=$((SECONDS - start))
	check "stopped before the grace period ran out (${elapsed}s)" eval '[ $elapsed -lt 5 ]'
	for name in server client1 client2 client3 client4; do
		check "$name exited 0" eq "$(state "$name")" "exited 0"
	done
	check "client5 was never created" eq "$(state client5)" "missing -"
	check "server: cerrar_listener" eq "$(count "$file" server "action: cerrar_listener \| result: success")" 1
	for ((i = 1; i <= 4; i++)); do
		check "server: cerrar_conexion of agency $i" eq \
			"$(count "$file" server "action: cerrar_conexion \| result: success \| agencia: $i ")" 1
	done
	check "server: cerrar_archivo_apuestas" eq "$(count "$file" server "action: cerrar_archivo_apuestas \| result: success")" 1
	check "server: shutdown success, last" eq "$(logs "$file" server | tail -n 1 | grep -cE "action: shutdown \| result: success( \||$)")" 1
	check "server: each parked wait ended (espera_sorteo, conexion_cerrada)" eq \
		"$(count "$file" server "action: espera_sorteo \| result: fail \| agencia: [1-4] \| motivo: conexion_cerrada")" 4
	check "server: no ERROR line" eq "$(count "$file" server "^[0-9-]+ [0-9:]+ ERROR ")" 0
	for ((i = 1; i <= 4; i++)); do
		check "client$i: shutdown success" eq "$(count "$file" "client$i" "action: shutdown \| result: success( \||$)")" 1
		check "client$i: no consulta_ganadores" eq "$(count "$file" "client$i" "action: consulta_ganadores")" 0
	done
	compose "$file" down -v --remove-orphans -t 1 >/dev/null 2>&1
}

# validar OUTCOME: runs validar-servidor.sh and checks its exit status, its
# last line, and that it answered within its own bound.
validar() {
	local want=$1 rc out start elapsed wantrc=0
	[ "$want" = success ] || wantrc=1
	start=$SECONDS
	out=$(VALIDAR_TIMEOUT=10 ./scripts/validar-servidor.sh 2>"$work/validar.err")
	rc=$?
	elapsed=$((SECONDS - start))
	check "  exits $wantrc" eq "$rc" "$wantrc"
	check "  last line: action: test_server | result: $want" eq "$(tail -n 1 <<<"$out")" "action: test_server | result: $want"
	check "  answered within its bound (${elapsed}s)" eval '[ $elapsed -le 15 ]'
}

step_validar() {
	local file=$DEFAULT_FILE
	use "$file"
	check "compose up -d server" quiet compose "$file" up -d server
	check "server healthy" poll "$WAIT" healthy
	echo "  against the running central:"
	validar success
	check "it published no port" eq "$(docker port server)" ""
	echo "  against a frozen central (docker pause):"
	if docker pause server >/dev/null 2>&1; then
		validar fail
		docker unpause server >/dev/null 2>&1
	else
		echo "  (docker pause unavailable here: skipped)"
	fi
	check "compose stop -t 1 server" quiet compose "$file" stop -t 1 server
	echo "  against the stopped central:"
	validar fail
	compose "$file" down -v --remove-orphans -t 1 >/dev/null 2>&1
	echo "  without the network:"
	validar fail
}

leftovers() {
	{
		docker ps -aq --filter "label=com.docker.compose.project=$PROJECT"
		docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT"
		docker network ls -q --filter "label=com.docker.compose.project=$PROJECT"
		docker network inspect "$NETWORK" >/dev/null 2>&1 && echo "$NETWORK"
		docker ps -aq --filter "name=^validar-servidor-"
	} | wc -l | tr -d ' '
}

step_cleanup() {
	cleanup
	check "no container, volume or network of the test left" eq "$(leftovers)" 0
}

# --- preconditions -----------------------------------------------------------

fatal() {
	echo "test-docker: $*" >&2
	echo "0 passed, 1 failed"
	exit 1
}

docker info >/dev/null 2>&1 || fatal "no Docker engine"
[ -x "$DATASET_BIN" ] || fatal "$DATASET_BIN missing: make build"
for image in "$SERVER_IMAGE" "$CLIENT_IMAGE"; do
	docker image inspect "$image" >/dev/null 2>&1 || fatal "image $image missing: make docker-image"
done
# The fixed names must be free (or ours, left by an interrupted run).
taken=$(docker ps -a --format '{{.Names}} {{.Label "com.docker.compose.project"}}' |
	awk -v p="$PROJECT" '$1 ~ /^(server|client[0-9]+)$/ && $2 != p {print $1}')
[ -z "$taken" ] || fatal "containers $(echo $taken) belong to another project (make docker-compose-down first)"
if docker network inspect "$NETWORK" >/dev/null 2>&1 &&
	[ "$(docker network inspect -f '{{index .Labels "com.docker.compose.project"}}' "$NETWORK")" != "$PROJECT" ]; then
	fatal "network $NETWORK belongs to another project (make docker-compose-down first)"
fi
cleanup
echo "compose: $COMPOSE ($($COMPOSE version --short 2>/dev/null || $COMPOSE version | head -n 1))"

step "generar-compose.sh: arguments, and deployments/docker-compose.yaml is its output" step_generator
step "five agencies, deployments/docker-compose.yaml" step_five
step "the bets volume outlives the containers: down, up, same draw" step_resume
step "a central killed and started again resumes from the volume" step_restart
step "make docker-compose-up: a fresh round each time, RESUME=1 continues" step_make_up
step "generated compose, 1 agency" step_generated 1
step "generated compose, 10 agencies" step_generated 10
step "stop -t 5 while four agencies wait for the draw" step_stop_parked
step "validar-servidor.sh" step_validar
step "cleanup leaves nothing behind" step_cleanup

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]

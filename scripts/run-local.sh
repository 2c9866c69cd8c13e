#!/usr/bin/env bash
# Runs the central and AGENCIES agencies as local processes, their output
# prefixed like docker compose's ("server   | ..."). Exits 0 only when every
# agency got its winners. Expects bin/ built and .data/ prepared (make run).
set -euo pipefail
cd "$(dirname "$0")/.."

agencies=${AGENCIES:-5}
port=${SERVER_PORT:-12345}
data=${DATA_DIR:-.data}
store="$data/bets.csv"
rm -f "$store"

prefix() { local name=$1; sed -u "s/^/$(printf '%-8s' "$name") | /"; }

# Start the central; its output goes through the prefixer.
SERVER_PORT=$port SERVER_AGENCIES=$agencies SERVER_STORAGE_PATH=$store \
	./bin/server > >(prefix server) 2>&1 &
server_pid=$!
trap 'kill -TERM $server_pid 2>/dev/null || true' EXIT

pids=()
for id in $(seq 1 "$agencies"); do
	CLI_ID=$id CLI_SERVER_ADDRESS=127.0.0.1:$port CLI_DATA_PATH="$data/agency-$id.csv" \
		./bin/client > >(prefix "client$id") 2>&1 &
	pids+=($!)
done

failed=0
for i in "${!pids[@]}"; do
	if ! wait "${pids[$i]}"; then
		echo "run-local: agency $((i + 1)) failed" >&2
		failed=1
	fi
done

kill -TERM $server_pid
wait $server_pid || failed=1
trap - EXIT
# Let the prefixers drain before the last line.
wait
if [ $failed -ne 0 ]; then
	echo "run-local: FAILED" >&2
	exit 1
fi
echo "run-local: every agency got its winners; bets stored in $store"

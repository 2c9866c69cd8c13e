#!/usr/bin/env bash
# Builds an older revision's server and client for `make bench BASELINE=REV`,
# which runs them beside the tree's. The revision's files are copied out with
# git archive into a temporary directory (the work tree and the repository's
# worktrees are left alone), built there with the command given, the tree's
# own build command, and the copy is removed however the build ends.
#
#   scripts/bench-baseline.sh REV OUT_DIR GO_BUILD_COMMAND...
#   scripts/bench-baseline.sh HEAD~3 .data/bench/baseline/bin go build
#
# On success OUT_DIR holds server and client (and nothing else), stderr says
# which revision (short hash and subject), and stdout is its short hash, the
# label the benchmarks report it by. A REV that names no commit, or whose
# programs do not build, fails with one line naming REV as the last line.
set -euo pipefail

say() { echo "bench: $*" >&2; }

if [ $# -lt 3 ]; then
	say "usage: $0 REV OUT_DIR GO_BUILD_COMMAND..."
	exit 2
fi
rev=$1 out=$2
shift 2

if ! commit=$(git rev-parse --verify --quiet "$rev^{commit}"); then
	say "BASELINE=$rev: no such revision in this repository"
	exit 1
fi
short=$(git rev-parse --short "$commit")
say "baseline: $(git log -1 --format='%h %s' "$commit")"

# A fresh OUT_DIR: a stale build must not pass for this one.
rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd -P)

src=$(mktemp -d "${TMPDIR:-/tmp}/bench-baseline.XXXXXX")
trap 'rm -rf "$src"' EXIT
trap 'exit 130' INT TERM # exit, so that the EXIT trap removes the copy
git archive "$commit" | tar -x -C "$src"

# The copy's own go.work: a GOWORK from the environment would build the tree's
# modules instead.
if ! (cd "$src" && GOWORK="$src/go.work" "$@" -o "$out/" ./server ./client); then
	rm -rf "$out"
	say "BASELINE=$rev ($short): its server and client do not build (go build's output above)"
	exit 1
fi
echo "$short"

#!/usr/bin/env bash
# Fails when git tracks a compiled program: an ELF, Mach-O or PE file, or an
# executable that is not a script (no #!). `go build` in a module's directory
# leaves one there (server/server), and `git add .` takes it; build outputs
# belong in bin/ (`make build`) and in .gitignore. `make binaries-check` (and
# so `make test`) runs this. It reads what git would commit (the index), not
# the work tree, so it works the same on a clean clone; outside a git checkout
# it says there is nothing to check and passes.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "binaries-check: $*" >&2; }

if ! command -v git >/dev/null 2>&1 || ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	echo "binaries-check: not a git checkout: nothing to check"
	exit 0
fi

# Only files git finds binary (a NUL byte near the start, as every compiled
# program has) or marked executable are opened: one git process for each of
# those few, not for every file.
declare -A binary
while IFS= read -r -d '' entry; do
	[ "${entry%% *}" != i/-text ] || binary[${entry#*$'\t'}]=1
done < <(git ls-files --eol -z)

found=0
while IFS= read -r -d '' entry; do
	mode=${entry%% *}
	path=${entry#*$'\t'}
	[ "$mode" = 100755 ] || [ -n "${binary[$path]:-}" ] || continue
	magic=$(git cat-file blob ":$path" | head -c 4 | od -An -tx1 | tr -d ' \n' || true)
	case $magic in
	7f454c46) kind="an ELF binary" ;;
	feedface | feedfacf | cefaedfe | cffaedfe | cafebabe) kind="a Mach-O binary" ;;
	4d5a*) kind="a PE (Windows) binary" ;;
	2321*) continue ;; # #!: a script
	*) if [ "$mode" = 100755 ]; then kind="an executable that is not a script (no #!)"; else continue; fi ;;
	esac
	say "$path is $kind"
	found=$((found + 1))
done < <(git ls-files -s -z)

if [ "$found" -gt 0 ]; then
	say "build outputs belong in bin/ (make build), not in git: git rm --cached the file, delete it, and ignore it in .gitignore"
	exit 1
fi

#!/usr/bin/env bash
# Builds one of our FROM-scratch images from its Dockerfile and the static
# binary `make build` wrote (make docker-image runs it for both images):
#
#   ./scripts/build-image.sh deployments/server.Dockerfile bin/server lottery-server:latest
#
# The build context is a temporary directory holding only those two files (at
# the same relative paths), so neither .git nor .data is sent to the engine.
# With the buildx component the build uses BuildKit (`docker buildx build
# --load`). Without it the CLI falls back to the legacy builder, which prints a
# deprecation notice on every build; that notice alone is dropped (a failed
# build shows everything). Prints one line: the image and its ID.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -ne 3 ]; then
	echo "usage: $(basename "$0") DOCKERFILE BINARY TAG" >&2
	exit 2
fi
dockerfile=$1 binary=$2 tag=$3
for f in "$dockerfile" "$binary"; do
	[ -f "$f" ] || { echo "build-image: $f missing" >&2; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/build-image.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
ctx=$tmp/context
mkdir -p "$ctx/$(dirname "$dockerfile")" "$ctx/$(dirname "$binary")"
cp "$dockerfile" "$ctx/$dockerfile"
cp "$binary" "$ctx/$binary"

if docker buildx version >/dev/null 2>&1; then
	builder="BuildKit"
	build=(docker buildx build --load)
else
	builder="legacy builder"
	build=(env DOCKER_BUILDKIT=0 docker build)
fi
if ! "${build[@]}" -q -f "$ctx/$dockerfile" -t "$tag" "$ctx" >"$tmp/out" 2>"$tmp/err"; then
	cat "$tmp/out" "$tmp/err" >&2
	echo "build-image: building $tag failed" >&2
	exit 1
fi
sed '/^DEPRECATED: The legacy builder/,/^[[:space:]]*$/d' "$tmp/err" >&2
echo "image $tag: $(docker image inspect -f '{{.Id}}' "$tag" | cut -c1-19) ($builder)"

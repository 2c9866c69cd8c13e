# Path helpers shared by generar-compose.sh and generar-stack.sh (sourced, not
# run). The caller sets $root (the repository) and $out_dir (where the file it
# writes goes), both absolute and canonical.

# canonical DIR: DIR absolute, symbolic links resolved when it exists.
canonical() {
	if [ -d "$1" ]; then
		(cd -- "$1" && pwd -P)
	else
		case $1 in
		/*) echo "${1%/}" ;;
		*) echo "$(pwd -P)/${1%/}" ;;
		esac
	fi
}

# relpath FROM TO: the path of TO relative to FROM (both absolute, canonical),
# always starting with "." so that compose reads it as a path, not a volume name.
relpath() {
	local from=$1 to=$2 common=$1 up="" rest
	while [ "$to" != "$common" ] && [ "${to#"$common"/}" = "$to" ]; do
		[ "$common" = / ] && break
		common=$(dirname -- "$common")
		up="../$up"
	done
	if [ "$to" = "$common" ]; then
		rest=""
	elif [ "$common" = / ]; then
		rest=${to#/}
	else
		rest=${to#"$common"/}
	fi
	local rel="$up$rest"
	rel=${rel%/}
	case $rel in
	"") echo . ;;
	../* | ..) echo "$rel" ;;
	*) echo "./$rel" ;;
	esac
}

# inside PATH: whether PATH is the repository or inside it.
inside() { [ "$1" = "$root" ] || [ "${1#"$root"/}" != "$1" ]; }

# place DIR: how the written file names DIR. Relative when both the file and
# DIR are inside the repository (a committed file is the same on every
# machine); absolute otherwise (a file written to /tmp, data elsewhere).
place() {
	local dir
	dir=$(canonical "$1")
	if inside "$out_dir" && inside "$dir"; then
		relpath "$out_dir" "$dir"
	else
		echo "$dir"
	fi
}

#!/bin/sh
# tests/check-layers.sh - daemon/README's layer rule: includes go to the same
# layer or a lower one, and no two modules of daemon/ include or call each
# other, directly or round a loop.
#
#   sh tests/check-layers.sh [BUILD]    (BUILD from the environment otherwise)
#
# A module is a file's name without .c, .h or a trailing _int. Include edges
# come from the #include "x.h" lines of daemon/*.[ch]; call edges from the
# built objects: module a calls module b when a's object needs a symbol that
# b's object defines (nm). Fails on an include into a higher layer, on an
# include loop, on a call loop, and when there are no objects to read.
# A module that daemon/README does not place is reported, not failed, so a
# new file lands first and is placed in the same change or the next.
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${1:-${BUILD:-build}}
command -v nm >/dev/null 2>&1 || { echo "check-layers: nm (binutils) is needed" >&2; exit 1; }
ls "$BUILD"/*.o >/dev/null 2>&1 || { echo "check-layers: no objects in $BUILD (make first)" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/refd-layers.XXXXXX") || exit 2
trap 'rm -rf "$TMP"' EXIT

modname() { # path -> module
	b=$(basename "$1")
	b=${b%.[ch]}
	b=${b%.o}
	echo "${b%_int}"
}

# layers: "module layer" from daemon/README's "layer N name: a b c" lines.
awk '/^layer [0-9]+ [^:]*:/ { n = $2; sub(/^[^:]*: */, ""); for (i = 1; i <= NF; i++) print $i, n }' \
	daemon/README >"$TMP/layers"
[ -s "$TMP/layers" ] || { echo "check-layers: no layer table in daemon/README" >&2; exit 1; }

# includes: "from to" between distinct modules.
for f in daemon/*.c daemon/*.h; do
	m=$(modname "$f")
	sed -n 's/^#include "\([A-Za-z0-9_]*\)\.h".*/\1/p' "$f" | while read -r h; do
		[ -f "daemon/$h.h" ] || continue
		t=$(modname "$h.h")
		[ "$t" = "$m" ] || echo "$m $t"
	done
done | sort -u >"$TMP/includes"

# calls: "from to" from the objects' symbols.
for o in "$BUILD"/*.o; do
	m=$(modname "$o")
	[ -f "daemon/$m.c" ] || continue # generated objects (migrations.o)
	nm "$o" | awk -v m="$m" '$2 ~ /^[TDBR]$/ { print "D", m, $3 } $1 == "U" { print "U", m, $2 }'
done >"$TMP/syms"
awk '$1 == "D" { def[$3] = $2 } $1 == "U" { use[++n] = $2 " " $3 }
	END { for (i = 1; i <= n; i++) { split(use[i], a, " "); if ((a[2] in def) && def[a[2]] != a[1]) print a[1], def[a[2]] } }' \
	"$TMP/syms" | sort -u >"$TMP/calls"
[ -s "$TMP/calls" ] || { echo "check-layers: no calls found between objects in $BUILD" >&2; exit 1; }

fail=0

# Modules the table does not place.
for f in daemon/*.c daemon/*.h; do modname "$f"; done | sort -u >"$TMP/modules"
awk 'NR == FNR { placed[$1] = 1; next } !($1 in placed) { print }' "$TMP/layers" "$TMP/modules" |
	while read -r m; do
		echo "check-layers: note: $m is in no layer of daemon/README" >&2
	done

# Includes into a higher layer.
awk 'NR == FNR { layer[$1] = $2; next }
	($1 in layer) && ($2 in layer) && layer[$2] > layer[$1] {
		printf "check-layers: %s (layer %d) includes %s (layer %d): a higher layer\n", $1, layer[$1], $2, layer[$2]; bad = 1 }
	END { exit bad }' "$TMP/layers" "$TMP/includes" >&2 || fail=1

# Loops: a pair that reaches each other (transitive closure of the edges).
loops() { # FILE KIND
	awk -v kind="$2" '{ e[$1, $2] = 1; n[$1] = 1; n[$2] = 1 }
		END {
			for (k in n) for (i in n) if ((i, k) in e) for (j in n) if ((k, j) in e) e[i, j] = 1
			for (i in n) for (j in n) if (i < j && ((i, j) in e) && ((j, i) in e)) {
				printf "check-layers: %s loop: %s and %s reach each other\n", kind, i, j; bad = 1 }
			exit bad
		}' "$1" >&2
}
loops "$TMP/includes" include || fail=1
loops "$TMP/calls" call || fail=1

if [ "$fail" -eq 0 ]; then
	echo "check-layers: $(wc -l <"$TMP/includes") include and $(wc -l <"$TMP/calls") call edges between $(wc -l <"$TMP/modules") modules, no loop, none upwards"
fi
exit "$fail"

#!/bin/sh
# tests/check-migrations.sh - migrations are forward-only: a released
# migration never changes, never goes away, and nothing new is slipped in
# before it.
#
#   sh tests/check-migrations.sh [--release] [ROOT]
#
# ROOT (default: this tree) holds sql/migrations/*.sql and
# sql/released-migrations.sha256, the SHA-256 of every migration some package
# version shipped. Fails when a listed file is missing or differs from its
# checksum, when an unlisted (not yet released) file has a version at or below
# the highest released one, or when two files share a version.
# --release appends the unlisted files to the list (when cutting a package
# version), after the same checks.
# The daemon enforces the same for databases: it records each applied
# migration's SHA-256 and refuses one that differs (daemon/migrate.c).
#
# Owns: the rule on files. Must never: rewrite a listed line.
set -u
release=0
if [ "${1:-}" = --release ]; then
	release=1
	shift
fi
ROOT=${1:-$(dirname "$0")/..}
cd "$ROOT" || exit 2
LIST=sql/released-migrations.sha256
[ -f "$LIST" ] || { echo "check-migrations: $LIST is missing" >&2; exit 1; }

fail=0
bad() {
	echo "check-migrations: $*" >&2
	fail=1
}
ver_of() { basename "$1" | sed 's/_.*//' | sed 's/^0*//'; }

max_released=0
# Listed lines: "<sha256>  sql/migrations/NNNN_name.sql"; '#' lines are comments.
while read -r sum path; do
	case $sum in '' | '#'*) continue ;; esac
	if [ ! -f "$path" ]; then
		bad "$path was released but is gone (restore it; migrations are forward-only)"
		continue
	fi
	now=$(sha256sum <"$path" | cut -c1-64)
	[ "$now" = "$sum" ] ||
		bad "$path was released and has changed since (restore it and put the change in a new migration)"
	v=$(ver_of "$path")
	[ "${v:-0}" -gt "$max_released" ] && max_released=${v:-0}
done <"$LIST"

new=""
for f in sql/migrations/*.sql; do
	[ -f "$f" ] || continue
	grep -q "  $f\$" "$LIST" && continue
	v=$(ver_of "$f")
	if [ "${v:-0}" -le "$max_released" ]; then
		bad "$f is not released but numbered at or below the last released migration ($max_released): give it a higher number"
	fi
	new="$new $f"
done

dups=$(for f in sql/migrations/*.sql; do ver_of "$f"; done | sort -n | uniq -d)
[ -z "$dups" ] || bad "two migration files share version(s): $dups"

[ "$fail" = 0 ] || exit 1
if [ "$release" = 1 ]; then
	for f in $new; do
		printf '%s  %s\n' "$(sha256sum <"$f" | cut -c1-64)" "$f" >>"$LIST"
		echo "released $f"
	done
fi
echo "check-migrations: $(grep -c '^[0-9a-f]' "$LIST") released migrations unchanged;" \
	"$(echo "$new" | wc -w) not yet released"
exit 0

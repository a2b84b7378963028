#!/bin/sh
# tests/check-config-reference.sh - README's configuration table, the example
# file and the daemon's own key table must agree.
#
#   sh tests/check-config-reference.sh [BUILD]    (BUILD from the environment otherwise)
#
# Fails when: README's table between the config-reference markers differs from
# `referrald --config-reference`; a key of the table is missing from
# deploy/referrald.conf.example; the example (with its file paths pointed at
# scratch files) does not pass --check-config.
# Regenerate README's table with:  sh tests/check-config-reference.sh --fix
set -u
cd "$(dirname "$0")/.." || exit 2

FIX=0
if [ "${1:-}" = "--fix" ]; then
	FIX=1
	shift
fi
BUILD=${1:-${BUILD:-build}}
BIN=$BUILD/referrald
[ -x "$BIN" ] || { echo "check-config-reference: $BIN not built" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/refd-cfgref.XXXXXX") || exit 2
trap 'rm -rf "$TMP"' EXIT
BEGIN='<!-- config-reference:begin -->'
END='<!-- config-reference:end -->'

"$BIN" --config-reference >"$TMP/want" || { echo "--config-reference failed" >&2; exit 1; }

if [ "$FIX" -eq 1 ]; then
	awk -v b="$BEGIN" -v e="$END" -v f="$TMP/want" '
		$0 == b { print; while ((getline l < f) > 0) print l; skip = 1; next }
		$0 == e { skip = 0 }
		!skip { print }' README.md >"$TMP/readme" && cat "$TMP/readme" >README.md
	echo "README.md configuration table regenerated"
fi

fail=0
grep -qxF "$BEGIN" README.md && grep -qxF "$END" README.md || {
	echo "not ok: README.md lacks the config-reference markers" >&2
	exit 1
}
awk -v b="$BEGIN" -v e="$END" '$0 == e { on = 0 } on { print } $0 == b { on = 1 }' README.md >"$TMP/have"
if cmp -s "$TMP/want" "$TMP/have"; then
	echo "ok 1 README configuration table matches referrald --config-reference"
else
	echo "not ok 1 README configuration table differs from referrald --config-reference" >&2
	diff -u "$TMP/have" "$TMP/want" >&2
	echo "(run: sh tests/check-config-reference.sh --fix)" >&2
	fail=1
fi

# Every key of the table appears in the example under its section, set or
# commented; a commented key with a default shows exactly that default.
missing=0
sed -n 's/^| `\[\([a-z]*\)\] \([a-z_]*\)` | [^|]* | \([^|]*\) |.*/\1 \2 \3/p' "$TMP/want" |
	sed 's/`//g' >"$TMP/keys"
[ -s "$TMP/keys" ] || { echo "not ok: no keys parsed from the reference" >&2; exit 1; }
while read -r section key def; do
	if ! awk -v s="[$section]" -v k="$key" '
		/^\[/ { cur = $0 }
		cur == s && $0 ~ "^#?" k " =" { found = 1 }
		END { exit !found }' deploy/referrald.conf.example; then
		echo "deploy/referrald.conf.example lacks [$section] $key" >&2
		missing=1
		continue
	fi
	[ "$def" = "(none)" ] && continue
	shown=$(awk -v s="[$section]" -v k="$key" '
		/^\[/ { cur = $0 }
		cur == s && index($0, "#" k " = ") == 1 { print substr($0, length(k) + 5); exit }' \
		deploy/referrald.conf.example)
	if [ -n "$shown" ] && [ "$shown" != "$def" ]; then
		echo "deploy/referrald.conf.example shows [$section] $key = $shown, default is $def" >&2
		missing=1
	fi
done <"$TMP/keys"
if [ "$missing" -eq 0 ]; then
	echo "ok 2 the example file names every key, with its default"
else
	echo "not ok 2 the example file misses keys or shows wrong defaults" >&2
	fail=1
fi

# The example itself is valid once its files exist (--check-config also
# loads the certificate, the key and the key files, so they must be real).
(
	umask 077
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj /CN=localhost -keyout "$TMP/server.key" -out "$TMP/server.crt" 2>/dev/null &&
	mkdir "$TMP/keydir" &&
	openssl rand -hex 32 >"$TMP/keydir/uic.key" &&
	echo "k1 $(openssl rand -hex 32)" >"$TMP/keydir/data.keys" &&
	openssl rand -hex 32 >"$TMP/keydir/token.key"
) || { echo "not ok 3 cannot create scratch certificate and keys" >&2; exit 1; }
sed -e "s|/etc/referrald/keys/|$TMP/keydir/|; s|/etc/referrald/|$TMP/|" deploy/referrald.conf.example >"$TMP/example.conf"
if out=$("$BIN" -c "$TMP/example.conf" --check-config 2>&1) && [ "$out" = "configuration ok" ]; then
	echo "ok 3 the example file passes --check-config"
else
	echo "not ok 3 the example file fails --check-config: $out" >&2
	fail=1
fi
exit "$fail"

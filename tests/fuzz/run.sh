#!/bin/sh
# tests/fuzz/run.sh - build the parser fuzzers with clang (libFuzzer +
# AddressSanitizer + UndefinedBehaviorSanitizer) and run each for a bounded
# time. What `make fuzz` runs.
#
#   sh tests/fuzz/run.sh [TARGET...]      (default: every tests/fuzz/fuzz_*.c)
#
# The daemon's objects are built by the Makefile into build-fuzz/ with clang
# and -fsanitize=fuzzer-no-link,address,undefined, so the code under test is
# instrumented exactly like the harness. Each target starts from its committed
# seed corpus tests/fuzz/corpus/<target>/ (read only: new inputs go to a
# scratch corpus under build-fuzz/), with the dictionary
# tests/fuzz/dict/<target>.dict, and runs FUZZ_SECONDS (default 60).
# A crash, leak, sanitizer report or failed invariant stops that target; its
# input is kept under tests/fuzz/crashes/<target>/ (not committed) and this
# script exits 1 after the other targets ran.
#
# Knobs: FUZZ_SECONDS (60), FUZZ_JOBS (1 process per target), FUZZ_MAX_LEN
# (bytes per input, 16384), FUZZ_BUILD (build-fuzz), CLANG (clang).
#
# Owns: build-fuzz/ and tests/fuzz/crashes/. Must never: write into the
# committed corpus, or print fuzz inputs (they may look like client data).
set -u

cd "$(dirname "$0")/../.." || exit 2
SECONDS_EACH=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-1}
MAX_LEN=${FUZZ_MAX_LEN:-16384}
FB=${FUZZ_BUILD:-build-fuzz}
CLANG=${CLANG:-clang}
SAN=fuzzer-no-link,address,undefined

command -v "$CLANG" >/dev/null 2>&1 || { echo "fuzz: $CLANG not found (make deps)" >&2; exit 2; }

if [ $# -gt 0 ]; then
	targets=$*
else
	targets=$(for f in tests/fuzz/fuzz_*.c; do basename "$f" .c | sed 's/^fuzz_//'; done)
fi

# The daemon's objects (all but main.o, which has its own main()).
objs=""
for f in daemon/*.c; do
	n=$(basename "$f" .c)
	[ "$n" = main ] && continue
	objs="$objs $FB/$n.o"
done
objs="$objs $FB/migrations.o $FB/ui_files.o"

echo "fuzz: building daemon objects into $FB/ with $CLANG -fsanitize=$SAN"
# shellcheck disable=SC2086 # objs is a word list
make --no-print-directory BUILD="$FB" CC="$CLANG" SANITIZE="$SAN" CFLAGS="-O1 -g" $objs >"$FB.log" 2>&1 || {
	cat "$FB.log" >&2
	echo "fuzz: building the daemon's objects failed" >&2
	exit 2
}
rm -f "$FB.log"

pkgs="libevent_core libevent_extra libevent_openssl openssl libpq jansson"
# shellcheck disable=SC2086 # pkgs is a word list
CFL="-std=c11 -D_GNU_SOURCE -O1 -g -fno-omit-frame-pointer -fno-sanitize-recover=all \
 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
 $(pkg-config --cflags $pkgs) -Idaemon -I$FB"
# shellcheck disable=SC2086
LIBS="$(pkg-config --libs $pkgs) -lm"

rc=0
for t in $targets; do
	src=tests/fuzz/fuzz_$t.c
	bin=$FB/fuzz_$t
	[ -f "$src" ] || { echo "fuzz: no target $src" >&2; rc=1; continue; }
	# shellcheck disable=SC2086
	"$CLANG" $CFL -fsanitize=fuzzer,address,undefined -o "$bin" "$src" $objs $LIBS || {
		echo "fuzz: $t: build failed" >&2
		rc=1
		continue
	}
	work=$FB/corpus/$t
	crashes=tests/fuzz/crashes/$t
	mkdir -p "$work" "$crashes"
	seeds=tests/fuzz/corpus/$t
	[ -d "$seeds" ] || seeds=
	echo "fuzz: $t for ${SECONDS_EACH}s (seeds: ${seeds:-none})"
	# The first corpus dir receives new inputs; the committed seeds only
	# feed it. -print_final_stats for the figures, output kept in a log.
	log=$FB/fuzz_$t.log
	par=
	[ "$JOBS" -gt 1 ] && par="-jobs=$JOBS -workers=$JOBS"
	# Tokens the mutator splices in (member names, keys, separators).
	[ -f "tests/fuzz/dict/$t.dict" ] && par="$par -dict=tests/fuzz/dict/$t.dict"
	# shellcheck disable=SC2086
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
		"$bin" -max_total_time="$SECONDS_EACH" -max_len="$MAX_LEN" -timeout=10 -rss_limit_mb=2048 \
		$par -print_final_stats=1 \
		-artifact_prefix="$crashes/" "$work" $seeds >"$log" 2>&1
	st=$?
	# -jobs>1 writes per-job logs in the working directory: fold them in.
	for j in fuzz-*.log; do
		[ -e "$j" ] || continue
		cat "$j" >>"$log" && rm -f "$j"
	done
	execs=$(awk '/stat::number_of_executed_units/ { s += $2 } END { print s + 0 }' "$log")
	cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | awk '{ print $2 }')
	found=$(find "$crashes" -type f | wc -l)
	if [ "$st" -ne 0 ] || [ "$found" -gt 0 ]; then
		echo "fuzz: $t: FAILED (exit $st); inputs in $crashes/; report:" >&2
		# Sanitizer and libFuzzer lines only: never the input bytes.
		grep -E 'ERROR|SUMMARY|runtime error|#[0-9]+ 0x|Test unit written' "$log" |
			awk '!seen[$0]++' | head -n 30 >&2
		rc=1
	else
		echo "fuzz: $t: ok, ${execs} executions, coverage ${cov:-?} edges, corpus $(find "$work" -type f | wc -l) inputs"
		rmdir "$crashes" 2>/dev/null
	fi
done
rmdir tests/fuzz/crashes 2>/dev/null
exit "$rc"

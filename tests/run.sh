#!/bin/sh
# tests/run.sh - run the test stages and print one summary line for CI.
#
#   sh tests/run.sh BUILD [unit] [integration] [lint] [check-config-reference] [check-layers]
#
# No stage given = all of them. unit: every BUILD/tests/test_* cmocka binary;
# integration: bats tests/integration/*.bats (TAP; two files at a time when GNU
# parallel is installed, REFD_TEST_JOBS=N to change) with BUILD exported; lint:
# tests/lint-spec.sh; check-config-reference: tests/check-config-reference.sh;
# check-layers: tests/check-layers.sh (daemon/README's layer rule) (each of the
# last three counts as one test case, skipped when absent).
# The last line is always "N passed, M failed" (test cases across stages);
# the exit code is non-zero when anything failed.
#
# Owns: stage selection and the counting. Must never: build anything (make
# does) or hide a failing stage.
set -u

cd "$(dirname "$0")/.." || exit 2
BUILD=${1:?usage: tests/run.sh BUILD [stages...]}
shift
case $BUILD in /*) ;; *) BUILD=$(pwd)/$BUILD ;; esac
export BUILD
[ $# -gt 0 ] || set -- unit integration lint check-config-reference check-layers

PASS=0
FAIL=0
SKIP=0
BROKEN=""          # stages that failed outside any counted test case
OUT=$(mktemp -d "${TMPDIR:-/tmp}/refd-run.XXXXXX") || exit 2
trap 'rm -rf "$OUT"' EXIT

# run_logged NAME CMD...: output goes to the terminal and to $OUT/NAME.log;
# the command's exit code to $OUT/NAME.rc.
run_logged() {
	name=$1
	shift
	{ "$@" 2>&1; echo $? >"$OUT/$name.rc"; } | tee "$OUT/$name.log"
	return "$(cat "$OUT/$name.rc")"
}

count() { # count PASSED FAILED
	PASS=$((PASS + $1))
	FAIL=$((FAIL + $2))
}

stage_unit() {
	echo "== unit"
	found=0
	for t in "$BUILD"/tests/test_*; do
		[ -x "$t" ] || continue
		found=1
		n=$(basename "$t")
		echo "-- $n"
		run_logged "$n" "$t"
		rc=$?
		# cmocka's summary: "[  PASSED  ] N test(s)." / "[  FAILED  ] N test(s)..."
		# (one pair per group; a binary may run several groups).
		p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$OUT/$n.log" | awk '{ s += $1 } END { print s + 0 }')
		f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$OUT/$n.log" | awk '{ s += $1 } END { print s + 0 }')
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
			# Crashed before its summary (or an error cmocka did not count).
			f=1
			echo "-- $n exited with $rc" >&2
		fi
		count "$p" "$f"
	done
	[ "$found" = 1 ] || echo "(no unit test binaries in $BUILD/tests)"
}

stage_integration() {
	echo "== integration"
	set -- tests/integration/*.bats
	if [ ! -e "$1" ]; then
		echo "(no integration tests)"
		return
	fi
	if [ ! -x "$BUILD/referrald" ]; then
		echo "$BUILD/referrald is missing: build it first (make)" >&2
		BROKEN="$BROKEN integration"
		return
	fi
	# One template cluster and one set of dev certificates for the whole run
	# (tests/lib/common.bash copies them instead of running initdb per file).
	chmod 0755 "$OUT"
	REFD_CACHE=$OUT/cache
	export REFD_CACHE
	# --timing: each TAP line ends "in N ms", so slow tests show in CI logs.
	# Two .bats files at a time (REFD_TEST_JOBS=N to change, 1 = one by one;
	# needs GNU parallel): each file has its own cluster and daemon, and most
	# of a file's time is spent waiting (deadlines, timeouts, drains), so this
	# halves the suite's time on two cores. Tests within a file stay in order.
	set -- --tap --timing "$@"
	jobs=${REFD_TEST_JOBS:-2}
	if [ "$jobs" -gt 1 ] && command -v parallel >/dev/null 2>&1; then
		set -- --jobs "$jobs" --no-parallelize-within-files "$@"
	fi
	run_logged bats bats "$@"
	rc=$?
	p=$(grep -c '^ok ' "$OUT/bats.log")
	s=$(grep -c '^ok .* # skip' "$OUT/bats.log")
	f=$(grep -c '^not ok ' "$OUT/bats.log")
	SKIP=$((SKIP + s))
	count $((p - s)) "$f"
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		BROKEN="$BROKEN integration"
	fi
}

# stage_script NAME FILE: a script whose exit code is one test case.
stage_script() {
	echo "== $1"
	if [ ! -f "$2" ]; then
		echo "(skipped: $2 not present)"
		SKIP=$((SKIP + 1))
		return
	fi
	if run_logged "$1" sh "$2"; then
		count 1 0
	else
		echo "not ok $1" >&2
		count 0 1
	fi
}

start=$(date +%s)
for stage in "$@"; do
	case $stage in
	unit) stage_unit ;;
	integration) stage_integration ;;
	lint) stage_script lint tests/lint-spec.sh ;;
	check-config-reference) stage_script check-config-reference tests/check-config-reference.sh ;;
	check-layers) stage_script check-layers tests/check-layers.sh ;;
	*)
		echo "unknown stage: $stage" >&2
		BROKEN="$BROKEN $stage"
		;;
	esac
done

echo "== done in $(($(date +%s) - start)) s"
[ "$SKIP" -eq 0 ] || echo "$SKIP skipped"
[ -z "$BROKEN" ] || echo "broken stages (failed outside a test case):$BROKEN"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ] && [ -z "$BROKEN" ]

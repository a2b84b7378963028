# shellcheck shell=bash
# tests/bench/lib.sh - what every benchmark shares: the result rows that
# tests/bench/run.sh turns into the table and build/bench.json, the database's
# own commit limit measured with pgbench, and wrk's percentiles.
#
#   . tests/bench/lib.sh     (after tests/lib/common.bash)
#
# bench_row WORK DAEMON BASELINE UNIT GOAL P50_MS P99_MS [NOTE]
#     one row: WORK as it reads in the table, the daemon's figure and the
#     baseline's (same unit, same run), GOAL the ratio to reach ("0.15",
#     ">=1.0", or "-" when the row states a bound in NOTE), latencies in ms
#     ("-" when not measured). Appended to $BENCH_ROWS as one JSON object.
# bench_commit_limit [CLIENTS]
#     pgbench on this file's cluster ($REFD_PGPORT): one-row INSERT per
#     transaction, CLIENTS clients (32) for BENCH_DURATION; sets COMMIT_TPS,
#     COMMIT_P50 and COMMIT_P99 (ms, from pgbench's per-transaction log).
# wrk_rps FILE / wrk_pct FILE PCT
#     requests/s and a latency percentile (50, 90 or 99) in ms from
#     `wrk --latency` output.
# bench_api TOKEN METHOD PATH [JSON] [CURL ARGS...]
#     one request to the daemon at $REFD_URL over TLS (the harness's CA);
#     prints the body on a 2xx, otherwise says method, path and status (and
#     the protocol's error body) on stderr and fails.
#
# Owns: the row format. Must never: start servers of its own (the benchmark
# scripts do, through tests/lib/common.bash) or fail a benchmark for missing a
# goal (figures are printed; the table marks what is met).

BENCH_ROWS=${BENCH_ROWS:-${BUILD:?}/bench-rows.jsonl}
export BENCH_ROWS

bench_row() {
	local work=$1 daemon=$2 base=$3 unit=$4 goal=$5 p50=${6:--} p99=${7:--} note=${8:-}
	jq -nc --arg work "$work" --arg daemon "$daemon" --arg base "$base" --arg unit "$unit" \
		--arg goal "$goal" --arg p50 "$p50" --arg p99 "$p99" --arg note "$note" '
		def num: if . == "-" or . == "" then null else tonumber end;
		{work: $work, daemon: ($daemon | num), baseline: ($base | num), unit: $unit,
		 ratio: (if ($base | num) and ($base | num) > 0 and ($daemon | num)
		         then (($daemon | num) / ($base | num) * 1000 | round / 1000) else null end),
		 goal: $goal, p50_ms: ($p50 | num), p99_ms: ($p99 | num), note: $note}' >>"$BENCH_ROWS"
}

bench_api() {
	local t=$1 m=$2 p=$3 d=${4:-} out code
	shift 3
	[ $# -gt 0 ] && shift
	out=$(curl -sS --cacert "$REFD_CA" -X "$m" -H "Authorization: Bearer $t" \
		-H 'Content-Type: application/json' ${d:+--data-binary "$d"} "$@" \
		-w '\n%{http_code}' "$REFD_URL$p") || return 1
	code=${out##*$'\n'}
	case $code in
	2??) printf '%s\n' "${out%$'\n'*}" ;;
	*) echo "$m $p: HTTP $code ${out%$'\n'*}" >&2; return 1 ;;
	esac
}

wrk_rps() { awk '/^Requests\/sec:/ { print $2 }' "$1"; }

# wrk prints "  50%  1.23ms" (or us / s) under "Latency Distribution".
wrk_pct() {
	awk -v p="$2%" '$1 == p {
		v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
		if (u == "us") v /= 1000; else if (u == "s") v *= 1000; else if (u == "m") v *= 60000
		printf "%.2f\n", v; exit }' "$1"
}

bench_commit_limit() {
	local clients=${1:-32} dir=$REFD_TMP/pgbench-commit out
	mkdir -p "$dir" && chmod 0777 "$dir"
	refd_psql -c "DROP TABLE IF EXISTS bench_commit; CREATE TABLE bench_commit (id bigserial PRIMARY KEY,
		client int, at timestamptz DEFAULT now(), payload text);
		GRANT ALL ON bench_commit, bench_commit_id_seq TO PUBLIC" >/dev/null || return 1
	cat >"$dir/insert.sql" <<'EOF'
INSERT INTO bench_commit (client, payload) VALUES (:client_id, 'a one-row commit');
EOF
	out=$dir/out.txt
	# -l writes one line per transaction (latency in us, third column): the
	# percentiles come from there, as wrk's come from its histogram.
	(cd "$dir" && pgbench -n -h 127.0.0.1 -p "$REFD_PGPORT" -U postgres -c "$clients" -j 2 \
		-T "$(d=${BENCH_DURATION:-10s}; echo "${d%s}")" -l --log-prefix=tx -f insert.sql "$REFD_DB") >"$out" 2>&1 || {
		tail -n 5 "$out" >&2
		return 1
	}
	COMMIT_TPS=$(awk '/^tps = / { printf "%.0f\n", $3; exit }' "$out")
	read -r COMMIT_P50 COMMIT_P99 < <(cat "$dir"/tx.* | awk '{ print $3 }' | sort -n |
		awk '{ v[NR] = $1 } END { if (NR) { i = int(NR * 0.99) + 1; if (i > NR) i = NR
			printf "%.2f %.2f\n", v[int(NR * 0.5) + 1] / 1000, v[i] / 1000 } }')
	rm -f "$dir"/tx.*
	refd_psql -c "DROP TABLE bench_commit" >/dev/null
	export COMMIT_TPS COMMIT_P50 COMMIT_P99
	echo "  pgbench one-row INSERT per transaction, $clients clients: $COMMIT_TPS tps" \
		"(p50 $COMMIT_P50 ms, p99 $COMMIT_P99 ms)"
}

# ---- profiling (BENCH_PROFILE=1; off by default: it slows what it measures)
# bench_profile_setup: pg_stat_statements (nested statements tracked) and
#     auto_explain preloaded on this file's cluster, which is restarted (the
#     daemon's pool reconnects by itself).
# bench_profile_start: zero the statistics, perf record the daemon (-g, 499 Hz).
# bench_profile_report: the five statements with the most total time (with
#     nested ones, so the inside of api_* functions shows; BENCH_PROFILE_TOP
#     lists more), and the daemon's five hottest symbols.
bench_profile_setup() {
	[ "${BENCH_PROFILE:-0}" = 1 ] || return 0
	refd_as_pg sh -c "cat >>'$REFD_PGDATA/postgresql.conf'" <<'EOF'
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
pg_stat_statements.max = 2000
track_functions = all
EOF
	refd_pg_restart || return 1
	refd_psql -c 'CREATE EXTENSION IF NOT EXISTS pg_stat_statements' >/dev/null || return 1
	refd_wait_status "$REFD_URL/readyz" 200 20
}

bench_profile_start() {
	[ "${BENCH_PROFILE:-0}" = 1 ] || return 0
	refd_psql -c 'SELECT pg_stat_statements_reset()' >/dev/null
	PERF_PID=
	if command -v perf >/dev/null 2>&1; then
		perf record -q -F 499 -g -p "$(cat "$REFD_TMP/daemon-main.pid")" -o "$REFD_TMP/perf.data" \
			>/dev/null 2>&1 &
		PERF_PID=$!
	fi
}

bench_profile_report() {
	[ "${BENCH_PROFILE:-0}" = 1 ] || return 0
	local top=${BENCH_PROFILE_TOP:-5}
	echo "  top $top statements by total time (pg_stat_statements, nested included):"
	refd_psql -At -F ' | ' -c "SELECT round(total_exec_time::numeric, 0) || ' ms',
		calls || ' calls', round((total_exec_time / greatest(calls, 1))::numeric, 3) || ' ms/call',
		left(regexp_replace(query, '\s+', ' ', 'g'), 110)
		FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		ORDER BY total_exec_time DESC LIMIT $top" | sed 's/^/    /'
	echo "  top 8 functions by self time (pg_stat_user_functions, SQL ones too: those listed were not inlined):"
	refd_psql -At -F ' | ' -c "SELECT f.funcname || ' (' || l.lanname || ')', f.calls || ' calls',
		round(f.self_time::numeric / greatest(f.calls, 1), 3) || ' ms self/call',
		round(f.total_time::numeric / greatest(f.calls, 1), 3) || ' ms total/call'
		FROM pg_stat_user_functions f JOIN pg_proc p ON p.oid = f.funcid
		JOIN pg_language l ON l.oid = p.prolang ORDER BY f.self_time DESC LIMIT 8" | sed 's/^/    /'
	if [ -n "${PERF_PID:-}" ]; then
		kill -INT "$PERF_PID" 2>/dev/null
		wait "$PERF_PID" 2>/dev/null
		echo "  daemon: top 5 symbols by self samples (perf):"
		perf report -q -i "$REFD_TMP/perf.data" --stdio --no-children --sort dso,symbol 2>/dev/null |
			grep -E '^ +[0-9.]+%' | head -n 5 | sed 's/^ */    /'
	fi
}

#!/bin/sh
# tests/bench/run.sh - benchmarks (make bench). Prints figures; never part of
# make check.
#
#   sh tests/bench/run.sh BUILD
#
# 1. GET /healthz over TLS with keep-alive, wrk at 32 connections for ~10 s,
#    against the daemon and, in the same run, against nginx serving a static
#    20-byte JSON over TLS (same certificate, same machine); prints both
#    req/s and the ratio.
# 2. Then every other tests/bench/*.sh in name order (hooks for more
#    benchmarks: referral submissions vs pgbench, audit verification, ...).
#    Each is run as `bash FILE BUILD` and may source tests/lib/common.bash for
#    its own private PostgreSQL and daemon. A failing hook is reported and
#    makes this script exit non-zero, after the others ran.
#
# 3. At the end, one table of every figure (work, daemon, baseline, ratio,
#    goal, p50/p99) from the rows each benchmark wrote through
#    tests/bench/lib.sh, and the same rows as BUILD/bench.json for comparing
#    runs. Every ratio is against a baseline measured in this run.
#
# Knobs: BENCH_DURATION (default 10s), BENCH_CONNECTIONS (32), BENCH_THREADS (2),
# BENCH_ONLY (a name: run only tests/bench/NAME.sh after healthz).
#
# Owns: the healthz-vs-nginx comparison and the hook loop. Must never: use
# fixed ports or leave nginx, PostgreSQL or the daemon running.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u

cd "$(dirname "$0")/../.." || exit 2
BUILD=${1:?usage: tests/bench/run.sh BUILD}
case $BUILD in /*) ;; *) BUILD=$(pwd)/$BUILD ;; esac
export BUILD
DURATION=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
export BENCH_DURATION=$DURATION

# shellcheck source=../lib/common.bash
. tests/lib/common.bash
# shellcheck source=lib.sh
. tests/bench/lib.sh
rm -f "$BENCH_ROWS"

NGINX_PID=
cleanup() {
	[ -n "$NGINX_PID" ] && kill -TERM "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
	refd_teardown_file
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# nginx_start WORKERS: nginx on a free port serving the same 20-byte body from
# a file through open_file_cache, with the daemon's certificate; NGINX_PORT.
nginx_start() {
	local ndir=$REFD_TMP/nginx
	NGINX_PORT=$(refd_free_port) || return 1
	mkdir -p "$ndir/tmp" "$ndir/html"
	printf '%s' '{"status":"healthy"}' >"$ndir/html/healthz"
	cat >"$ndir/nginx.conf" <<EOF
worker_processes $1;
pid $ndir/nginx.pid;
error_log $ndir/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $ndir/tmp/body;
	proxy_temp_path $ndir/tmp/proxy;
	fastcgi_temp_path $ndir/tmp/fastcgi;
	uwsgi_temp_path $ndir/tmp/uwsgi;
	scgi_temp_path $ndir/tmp/scgi;
	keepalive_requests 1000000;
	open_file_cache max=16 inactive=60s;
	open_file_cache_valid 60s;
	server {
		listen 127.0.0.1:$NGINX_PORT ssl;
		ssl_certificate $REFD_CERTS/server.crt;
		ssl_certificate_key $REFD_CERTS/server.key;
		ssl_protocols TLSv1.2 TLSv1.3;
		root $ndir/html;
		location = /healthz { default_type application/json; }
	}
}
EOF
	nginx -p "$ndir" -c "$ndir/nginx.conf" -e "$ndir/error.log" -g 'daemon off;' 3>&- &
	NGINX_PID=$!
	refd_wait_status "https://127.0.0.1:$NGINX_PORT/healthz" 200 10 || {
		cat "$ndir/error.log" >&2
		return 1
	}
}

nginx_stop() {
	[ -n "$NGINX_PID" ] || return 0
	kill -TERM "$NGINX_PID" 2>/dev/null
	wait "$NGINX_PID" 2>/dev/null
	NGINX_PID=
}

bench_healthz() {
	echo "== GET /healthz over TLS, keep-alive, $CONNS connections, $DURATION (wrk -t$THREADS)"
	refd_setup_file || return 1
	# Per-request access log lines would measure the terminal, not the daemon.
	refd_config_set "$REFD_CONF" log level warn
	refd_daemon_stop main >/dev/null || return 1
	refd_daemon_start main "$REFD_CONF" || return 1

	wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$REFD_URL/healthz" >"$REFD_TMP/wrk-daemon.txt" 2>&1
	echo "-- referrald (one event loop)"
	cat "$REFD_TMP/wrk-daemon.txt"
	local w r_daemon r_nginx
	r_daemon=$(wrk_rps "$REFD_TMP/wrk-daemon.txt")
	grep -q 'Non-2xx' "$REFD_TMP/wrk-daemon.txt" && echo "warning: the daemon answered non-2xx" >&2
	# The two-core configuration: two daemons sharing the port (reuse_port),
	# each with its own loop and pool, against nginx with two workers.
	local r_two
	refd_daemon_stop main >/dev/null || return 1
	refd_config_set "$REFD_CONF" server reuse_port true
	cp "$REFD_CONF" "$REFD_TMP/twin.conf"
	refd_daemon_start main "$REFD_CONF" && refd_daemon_start twin "$REFD_TMP/twin.conf" || return 1
	wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$REFD_URL/healthz" >"$REFD_TMP/wrk-daemon2.txt" 2>&1
	echo "-- referrald, two daemons on one port (reuse_port)"
	cat "$REFD_TMP/wrk-daemon2.txt"
	r_two=$(wrk_rps "$REFD_TMP/wrk-daemon2.txt")
	refd_daemon_stop twin >/dev/null || return 1
	for w in 1 2; do
		nginx_start "$w" || return 1
		wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "https://127.0.0.1:$NGINX_PORT/healthz" \
			>"$REFD_TMP/wrk-nginx$w.txt" 2>&1
		echo "-- nginx $(nginx -v 2>&1 | sed 's/.*\///'), $w worker(s), static 20-byte JSON, open_file_cache"
		cat "$REFD_TMP/wrk-nginx$w.txt"
		nginx_stop
		r_nginx=$(wrk_rps "$REFD_TMP/wrk-nginx$w.txt")
		if [ -z "$r_daemon" ] || [ -z "$r_nginx" ]; then
			echo "wrk gave no figure" >&2
			return 1
		fi
		if [ "$w" = 1 ]; then
			bench_row "GET /healthz, 1 loop vs nginx 1 worker" "$r_daemon" "$r_nginx" req/s ">=1.0" \
				"$(wrk_pct "$REFD_TMP/wrk-daemon.txt" 50)" "$(wrk_pct "$REFD_TMP/wrk-daemon.txt" 99)" \
				"nginx p99 $(wrk_pct "$REFD_TMP/wrk-nginx$w.txt" 99) ms"
		else
			bench_row "GET /healthz, 2 daemons (reuse_port) vs nginx 2 workers" "$r_two" "$r_nginx" \
				req/s ">=1.0" "$(wrk_pct "$REFD_TMP/wrk-daemon2.txt" 50)" \
				"$(wrk_pct "$REFD_TMP/wrk-daemon2.txt" 99)" "nginx p99 $(wrk_pct "$REFD_TMP/wrk-nginx$w.txt" 99) ms"
		fi
	done
	refd_daemon_stop main >/dev/null
	refd_teardown_file
	REFD_TMP=
}

rc=0
bench_healthz || { echo "healthz benchmark failed" >&2; rc=1; }

for f in tests/bench/*.sh; do
	[ -e "$f" ] || continue
	case $(basename "$f") in run.sh | lib.sh) continue ;; esac
	[ -z "${BENCH_ONLY:-}" ] || [ "$(basename "$f" .sh)" = "$BENCH_ONLY" ] || continue
	echo "== $f"
	bash "$f" "$BUILD" || { echo "$f failed" >&2; rc=1; }
done
# ---- the table and build/bench.json ----------------------------------------
if [ -s "$BENCH_ROWS" ]; then
	echo
	echo "== results (ratios against baselines measured in this run; $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ))"
	jq -rs '(["work", "daemon", "baseline", "ratio", "goal", "p50/p99 ms", "note"] | @tsv),
		(.[] | [.work, "\(.daemon // "-") \(.unit)", "\(.baseline // "-")",
		        (.ratio // "-" | tostring), .goal, "\(.p50_ms // "-")/\(.p99_ms // "-")", .note] | @tsv)' \
		"$BENCH_ROWS" | column -t -s "$(printf '\t')"
	jq -s --arg at "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --argjson cores "$(nproc)" \
		'{at: $at, cores: $cores, rows: .}' "$BENCH_ROWS" >"$BUILD/bench.json"
	echo "(also in $BUILD/bench.json)"
fi
exit "$rc"

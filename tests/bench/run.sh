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
# Knobs: BENCH_DURATION (default 10s), BENCH_CONNECTIONS (32), BENCH_THREADS (2),
# NGINX_WORKERS (default 1: one event loop against the daemon's one loop).
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
NGINX_WORKERS=${NGINX_WORKERS:-1}

# shellcheck source=../lib/common.bash
. tests/lib/common.bash

NGINX_PID=
cleanup() {
	[ -n "$NGINX_PID" ] && kill -TERM "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
	refd_teardown_file
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rps() { awk '/^Requests\/sec:/ { print $2 }' "$1"; }

bench_healthz() {
	echo "== GET /healthz over TLS, keep-alive, $CONNS connections, $DURATION (wrk -t$THREADS)"
	refd_setup_file || return 1
	# Per-request access log lines would measure the terminal, not the daemon.
	refd_config_set "$REFD_CONF" log level warn
	refd_daemon_stop main >/dev/null || return 1
	refd_daemon_start main "$REFD_CONF" || return 1

	local nport ndir
	nport=$(refd_free_port) || return 1
	ndir=$REFD_TMP/nginx
	mkdir -p "$ndir/tmp"
	# The body is exactly 20 bytes: {"status":"healthy"}
	cat >"$ndir/nginx.conf" <<EOF
worker_processes $NGINX_WORKERS;
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
	server {
		listen 127.0.0.1:$nport ssl;
		ssl_certificate $REFD_CERTS/server.crt;
		ssl_certificate_key $REFD_CERTS/server.key;
		ssl_protocols TLSv1.2 TLSv1.3;
		location = /healthz {
			default_type application/json;
			return 200 '{"status":"healthy"}';
		}
	}
}
EOF
	nginx -p "$ndir" -c "$ndir/nginx.conf" -e "$ndir/error.log" -g 'daemon off;' 3>&- &
	NGINX_PID=$!
	refd_wait_status "https://127.0.0.1:$nport/healthz" 200 10 || {
		cat "$ndir/error.log" >&2
		return 1
	}

	local r_daemon r_nginx
	wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$REFD_URL/healthz" >"$REFD_TMP/wrk-daemon.txt" 2>&1
	wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "https://127.0.0.1:$nport/healthz" >"$REFD_TMP/wrk-nginx.txt" 2>&1
	echo "-- referrald"
	cat "$REFD_TMP/wrk-daemon.txt"
	echo "-- nginx $(nginx -v 2>&1 | sed 's/.*\///'), $NGINX_WORKERS worker(s), static 20-byte JSON"
	cat "$REFD_TMP/wrk-nginx.txt"
	r_daemon=$(rps "$REFD_TMP/wrk-daemon.txt")
	r_nginx=$(rps "$REFD_TMP/wrk-nginx.txt")
	if [ -z "$r_daemon" ] || [ -z "$r_nginx" ]; then
		echo "wrk gave no figure" >&2
		return 1
	fi
	grep -q 'Non-2xx' "$REFD_TMP/wrk-daemon.txt" && echo "warning: the daemon answered non-2xx" >&2
	printf 'healthz: referrald %.0f req/s, nginx %.0f req/s, ratio %.2f\n' \
		"$r_daemon" "$r_nginx" "$(awk -v a="$r_daemon" -v b="$r_nginx" 'BEGIN { print a / b }')"
	kill -TERM "$NGINX_PID" 2>/dev/null
	wait "$NGINX_PID" 2>/dev/null
	NGINX_PID=
	refd_daemon_stop main >/dev/null
	refd_teardown_file
	REFD_TMP=
}

rc=0
bench_healthz || { echo "healthz benchmark failed" >&2; rc=1; }

for f in tests/bench/*.sh; do
	[ -e "$f" ] || continue
	[ "$(basename "$f")" = run.sh ] && continue
	echo "== $f"
	bash "$f" "$BUILD" || { echo "$f failed" >&2; rc=1; }
done
exit "$rc"

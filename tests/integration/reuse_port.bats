#!/usr/bin/env bats
# [server] reuse_port: two daemons bind the same addresses with SO_REUSEPORT
# (one per core, the throughput issue's two-core configuration) and the kernel
# spreads new connections over both; without it the second is refused.

load ../lib/common

setup_file() {
	REFD_NO_DAEMON=1 refd_setup_file || return 1
	"$REFD_BIN" -c "$REFD_CONF" --migrate >/dev/null 2>&1
}

teardown_file() { refd_teardown_file; }

hits() { grep -c 'route=healthz' "$REFD_TMP/$1.log" || true; }

# Requests on new connections until each daemon's log shows more of them than
# before the first one (the harness's own start probes are in the logs too).
both_serve() {
	local i m0 t0
	m0=$(hits main) && t0=$(hits twin) || return 1
	for i in $(seq 1 200); do
		curl -s -o /dev/null --cacert "$REFD_CA" "$REFD_URL/healthz" || return 1
		if [ "$(hits main)" -gt "$m0" ] && [ "$(hits twin)" -gt "$t0" ]; then
			echo "$i"
			return 0
		fi
	done
	return 1
}

@test "without reuse_port a second daemon on the same address is refused at start" {
	refd_daemon_start main "$REFD_CONF"
	run timeout 20 "$REFD_BIN" -c "$REFD_CONF"
	[ "$status" -ne 0 ] && [ "$status" -ne 124 ]
	[[ "$output" == *"Address already in use"* ]]
	refd_daemon_stop main
}

@test "with reuse_port two daemons share the addresses and both get connections" {
	refd_config_set "$REFD_CONF" server reuse_port true
	cp "$REFD_CONF" "$REFD_TMP/twin.conf"
	refd_daemon_start main "$REFD_CONF"
	refd_daemon_start twin "$REFD_TMP/twin.conf"
	n=$(both_serve)
	echo "# both served after $n connections" >&3
	# One stops: the other keeps serving the address alone.
	refd_daemon_stop twin
	call "" GET /healthz
	[ "$HTTP_STATUS" = 200 ]
	refd_daemon_stop main
}

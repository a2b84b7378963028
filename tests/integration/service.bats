#!/usr/bin/env bats
# service.bats - the daemon as a system service (issue 13, part 2): key files
# made by --init-keys, the sd_notify protocol on a socket this file listens
# on, leaving root after binding, and journal priority prefixes.
load ../lib/common

setup_file() {
	REFD_NO_DAEMON=1 refd_setup_file || return 1
	export NL_BIN=$REFD_TMP/notify_listener
	cc -std=c11 -D_GNU_SOURCE -O1 -o "$NL_BIN" "$REFD_ROOT/tests/integration/notify_listener.c"
}

teardown_file() {
	local f
	for f in "$REFD_TMP"/listener-*.pid; do
		[ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
	refd_teardown_file
}

# conf NAME: a configuration with fresh ports in $REFD_TMP/NAME.conf
conf() {
	refd_config_write "$REFD_TMP/$1.conf" "$(refd_free_port)" "$(refd_free_port)" "$(refd_free_port)"
	echo "$REFD_TMP/$1.conf"
}

# listen NAME: a notify socket at $REFD_TMP/NAME.sock, datagrams in NAME.notify
listen() {
	"$NL_BIN" "$REFD_TMP/$1.sock" >"$REFD_TMP/$1.notify" 2>&1 &
	echo $! >"$REFD_TMP/listener-$1.pid"
	for _ in $(seq 1 50); do
		# Writable by anyone, as systemd's own: the daemon may have left root.
		[ -S "$REFD_TMP/$1.sock" ] && chmod 0777 "$REFD_TMP/$1.sock" && return 0
		sleep 0.1
	done
	return 1
}

# wait_line FILE REGEX [SECS]
wait_line() {
	for _ in $(seq 1 $((${3:-10} * 10))); do grep -Eq "$2" "$1" && return 0; sleep 0.1; done
	echo "no line matching '$2' in $1:" >&2
	cat "$1" >&2
	return 1
}

@test "--init-keys creates every key file the configuration names, 0600, and never overwrites one" {
	local c d
	c=$(conf keys)
	d=$REFD_TMP/newkeys
	mkdir -m 0700 "$d"
	refd_config_set "$c" security uic_key_file "$d/uic.key"
	refd_config_set "$c" security data_key_file "$d/data.keys"
	refd_config_set "$c" security token_key_file "$d/token.key"
	refd_config_set "$c" audit signing_key_file "$d/audit-head.key"
	# Without the files the configuration is refused...
	run "$REFD_BIN" -c "$c" --check-config
	[ "$status" -eq 1 ]
	# ...and --init-keys makes them.
	run "$REFD_BIN" -c "$c" --init-keys
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(stat -c %a "$d/uic.key")" = 600 ]
	[ "$(stat -c %a "$d/data.keys")" = 600 ]
	[ "$(stat -c %a "$d/token.key")" = 600 ]
	[ "$(stat -c %a "$d/audit-head.key")" = 600 ]
	openssl pkey -in "$d/audit-head.key" -noout -text | grep -q ED25519
	grep -Eqx '[0-9a-f]{64}' "$d/uic.key"
	grep -Eqx '[0-9a-f]{64}' "$d/token.key"
	! cmp -s "$d/uic.key" "$d/token.key"
	grep -Eqx 'k1 [0-9a-f]{64}' "$d/data.keys"
	if [ "$(id -u)" -eq 0 ]; then
		[ "$(stat -c %U "$d/uic.key")" = "$REFD_RUN_USER" ]
	fi
	# The output names files, never their contents.
	! grep -qF "$(cut -c1-16 "$d/uic.key")" <<<"$output"
	run "$REFD_BIN" -c "$c" --check-config
	[ "$status" -eq 0 ]
	# A second run refuses, and both files stay as they were.
	sum=$(cat "$d/uic.key" "$d/data.keys" | sha256sum)
	run "$REFD_BIN" -c "$c" --init-keys
	echo "$output"
	[ "$status" -eq 1 ]
	grep -q 'uic.key" exists: refusing to overwrite it' <<<"$output"
	[ "$(cat "$d/uic.key" "$d/data.keys" | sha256sum)" = "$sum" ]
	# One missing file is made; the existing one is still refused and kept.
	rm "$d/data.keys"
	run "$REFD_BIN" -c "$c" --init-keys
	[ "$status" -eq 1 ]
	grep -Eqx 'k1 [0-9a-f]{64}' "$d/data.keys"
	# A symbolic link where a key file should be is not followed.
	rm "$d/uic.key"
	ln -s "$REFD_TMP/elsewhere" "$d/uic.key"
	run "$REFD_BIN" -c "$c" --init-keys
	[ "$status" -eq 1 ]
	[ ! -e "$REFD_TMP/elsewhere" ]
}

@test "sd_notify: READY=1 after binding with the pool connected, STATUS=, WATCHDOG=1, RELOADING=1, STOPPING=1" {
	local c port n
	c=$(conf nt)
	listen nt
	NOTIFY_SOCKET=$REFD_TMP/nt.sock WATCHDOG_USEC=400000 refd_daemon_start nt "$c"
	wait_line "$REFD_TMP/nt.notify" '^READY=1 \| STATUS=connections=[0-9]+ in_flight=[0-9]+ pool=[1-9][0-9]*/4 busy=[0-9]+ queue=[0-9]+$'
	# READY came after the listeners were bound (the log says so first).
	grep -q 'event=listen listener=ops' "$REFD_TMP/nt.log"
	# The keep-alive comes from the loop: several within a second and a half.
	sleep 1.5
	# ... at its own pace (every WATCHDOG_USEC/2), not at every tick of the loop.
	n=$(grep -c '^WATCHDOG=1$' "$REFD_TMP/nt.notify")
	[ "$n" -ge 4 ] && [ "$n" -le 14 ]
	# STATUS follows the connections (a keep-alive client stays connected).
	port=$(awk '$1 == "listen" { split($3, a, ":"); print a[2] }' "$c")
	(curl -s --cacert "$REFD_CA" --keepalive-time 5 "https://127.0.0.1:$port/healthz" \
		"https://127.0.0.1:$port/healthz" -o /dev/null --rate 1/s 3>&- &)
	wait_line "$REFD_TMP/nt.notify" '^STATUS=connections=[1-9]'
	kill -HUP "$(refd_daemon_pid nt)"
	wait_line "$REFD_TMP/nt.notify" '^RELOADING=1 \| MONOTONIC_USEC=[0-9]+$'
	# READY=1 again once the reload is done.
	for _ in $(seq 1 50); do
		awk '/^RELOADING=1/ { r = NR } /^READY=1/ && r && NR > r { ok = 1 } END { exit !ok }' \
			"$REFD_TMP/nt.notify" && break
		sleep 0.1
	done
	awk '/^RELOADING=1/ { r = NR } /^READY=1/ && r && NR > r { ok = 1 } END { exit !ok }' \
		"$REFD_TMP/nt.notify"
	refd_daemon_stop nt
	grep -q '^STOPPING=1 | STATUS=.* draining$' "$REFD_TMP/nt.notify"
}

@test "without NOTIFY_SOCKET the daemon starts, serves and stops as before, with no notify line" {
	local c
	c=$(conf plain)
	unset NOTIFY_SOCKET
	refd_daemon_start plain "$c"
	! grep -q 'event=notify ' "$REFD_TMP/plain.log"
	refd_daemon_stop plain
}

@test "started as root it drops to [server] user after binding, and refuses to stay root" {
	local c pid uid
	[ "$(id -u)" -eq 0 ] || skip "needs root (CI runs make check as root): the switch cannot happen otherwise"
	c=$(conf root)
	# No user: refused at start, before serving anything.
	sed -i '/^user = /d' "$c"
	run "$REFD_BIN" -c "$c"
	[ "$status" -eq 3 ]
	grep -q 'step=privdrop reason="started as root without \[server\] user' <<<"$output"
	refd_config_set "$c" server user root
	run "$REFD_BIN" -c "$c"
	[ "$status" -eq 3 ]
	grep -q 'is root: refusing' <<<"$output"
	refd_config_set "$c" server user no-such-user-here
	run "$REFD_BIN" -c "$c"
	[ "$status" -eq 3 ]
	# With a user: it serves as that user, with no group of root's left.
	refd_config_set "$c" server user "$REFD_RUN_USER"
	refd_daemon_start root "$c"
	pid=$(refd_daemon_pid root)
	uid=$(id -u "$REFD_RUN_USER")
	grep -Eq "^Uid:[[:space:]]+$uid[[:space:]]+$uid[[:space:]]+$uid[[:space:]]+$uid\$" "/proc/$pid/status"
	grep -Eq "^Groups:[[:space:]]*$(id -g "$REFD_RUN_USER")[[:space:]]*\$" "/proc/$pid/status"
	grep -q "event=privdrop user=\"$REFD_RUN_USER\"" "$REFD_TMP/root.log"
	refd_daemon_stop root
}

@test "stderr that is the journal's stream gets <N> priority prefixes; other stderr does not" {
	local c
	c=$(conf jr)
	: >"$REFD_TMP/jr.log"
	JOURNAL_STREAM=$(stat -c '%d:%i' "$REFD_TMP/jr.log") refd_daemon_start jr "$c"
	grep -q '^<6>ts=.* level=info event=ready' "$REFD_TMP/jr.log"
	# An error: a reload of a broken file is refused (the daemon goes on).
	echo 'garbage line' >>"$c"
	kill -HUP "$(refd_daemon_pid jr)"
	wait_line "$REFD_TMP/jr.log" '^<3>ts=.* level=error event=reload.failed'
	sed -i '$d' "$c"
	refd_daemon_stop jr
	! grep -v '^<[3467]>' "$REFD_TMP/jr.log"
	# The variable naming another stream changes nothing.
	c=$(conf jr2)
	JOURNAL_STREAM=1:1 refd_daemon_start jr2 "$c"
	grep -q '^ts=.* event=ready' "$REFD_TMP/jr2.log"
	refd_daemon_stop jr2
}

# tests/lib/webhook_rx.bash - HTTPS webhook receivers for integration tests
# (tests/integration/webhook_receiver.c, built once per file).
#
# Owns: building the receiver, starting and stopping receivers that record
# every request into a directory, and reading what they recorded.
# Must never: answer for the daemon (a receiver only records), or print a
# webhook secret.
#
# Use after api_setup_file:  rx_build; port=$(rx_start NAME CERT KEY [PORT])
# Each request is NAME/N.body then NAME/N.head (written last).

rx_build() {
	export RX RX_BIN
	RX=$REFD_TMP/rx
	RX_BIN=$RX/webhook_receiver
	mkdir -p "$RX"
	# shellcheck disable=SC2046
	cc -std=c11 -D_GNU_SOURCE -O1 -o "$RX_BIN" "$REFD_ROOT/tests/integration/webhook_receiver.c" \
		$(pkg-config --cflags --libs libevent_core libevent_extra libevent_openssl openssl)
}

# rx_start NAME CERT KEY [PORT]: a receiver recording into $RX/NAME; prints its port.
rx_start() {
	local name=$1 d=$RX/$1 i
	mkdir -p "$d"
	rm -f "$d/port"
	(
		"$RX_BIN" "$2" "$3" "$d" ${4:+"$4"} </dev/null >>"$RX/$name.log" 2>&1 &
		echo $! >"$RX/$name.pid"
		wait $!
	) </dev/null >/dev/null 2>&1 3>&- &
	for i in $(seq 1 50); do
		[ -s "$d/port" ] && { cat "$d/port"; return 0; }
		sleep 0.1
	done
	echo "receiver $name did not start" >&2
	cat "$RX/$name.log" >&2
	return 1
}

rx_stop() {
	local pid
	pid=$(cat "$RX/$1.pid" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null || true
	rm -f "$RX/$1.pid"
}

rx_stop_all() {
	local f
	for f in "${RX:-/nonexistent}"/*.pid; do
		[ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
	return 0
}

# rx_bodies DIR TEXT: the .body files of DIR containing TEXT, oldest first.
rx_bodies() {
	local i=1
	while [ -e "$1/$i.head" ]; do
		grep -qF "$2" "$1/$i.body" 2>/dev/null && echo "$1/$i.body"
		i=$((i + 1))
	done
	return 0
}

# rx_types DIR ID: the event types DIR received naming ID, sorted, unique, one line.
rx_types() {
	local f
	rx_bodies "$1" "$2" | while read -r f; do jq -r .type "$f"; done | sort -u | tr '\n' ' '
}

# rx_wait DIR TEXT N SECS: until at least N bodies contain TEXT.
rx_wait() {
	local i n
	for i in $(seq 1 $(($4 * 10))); do
		n=$(rx_bodies "$1" "$2" | wc -l)
		[ "$n" -ge "$3" ] && return 0
		sleep 0.1
	done
	echo "after $4 s: $n bodies in $1 contain $2, wanted $3" >&2
	return 1
}

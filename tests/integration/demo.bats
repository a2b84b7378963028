#!/usr/bin/env bats
# make demo from a checkout under a 0700 directory (issue 7): deploy/demo.sh
# as root and as an unprivileged user, /healthz over TLS with the dev CA, the
# demo contract in var/demo/credentials.env, the walk-through it prints run
# verbatim, a busy port naming the other demo, Ctrl-C and SIGTERM leaving no
# process behind, a second run reusing the network, and the refusals that
# change nothing.
#
# Each checkout is a copy of this tree's tracked files (what a clone holds,
# including uncommitted edits) plus the binary under test as build/referrald.

load ../lib/common

DEMO_USER=refd-demo-test

setup_file() {
	export REFD_TMP
	REFD_TMP=$(mktemp -d "${TMPDIR:-/tmp}/refd-demo.XXXXXX") || return 1
	[ -x "$REFD_BIN" ] || { _refd_err "$REFD_BIN missing: run make first"; return 1; }
	[ "$(id -u)" -eq 0 ] || { _refd_err "demo.bats creates a user and runs as root"; return 1; }
	# The unprivileged user comes first: files below are given to it.
	id "$DEMO_USER" >/dev/null 2>&1 ||
		useradd --system --no-create-home --shell /bin/sh "$DEMO_USER" || return 1
	# The harness's cached certificates and template cluster keep this fast.
	export CERTS_CACHE=$REFD_TMP/certs-cache
	refd_certs "$CERTS_CACHE" >/dev/null || return 1
	# The unprivileged user's copy (the keys are 0600).
	export USER_CERTS=$REFD_TMP/certs-user
	cp -a "$CERTS_CACHE" "$USER_CERTS" && chown -R "$DEMO_USER": "$USER_CERTS" && chmod 0755 "$REFD_TMP" ||
		return 1
	if [ -n "${REFD_CACHE:-}" ] && _refd_pg_template; then
		export PG_TEMPLATE=$REFD_CACHE/pg/template
	else
		export PG_TEMPLATE=
	fi
	# The private directories people clone into: mode 0700, owned by the user.
	export ROOT_PRIV USER_PRIV
	ROOT_PRIV=$(mktemp -d "${TMPDIR:-/tmp}/refd-root-home.XXXXXX") || return 1
	USER_PRIV=$(mktemp -d "${TMPDIR:-/tmp}/refd-user-home.XXXXXX") || return 1
	chmod 0700 "$ROOT_PRIV" "$USER_PRIV"
	chown "$DEMO_USER": "$USER_PRIV"
	clone "$ROOT_PRIV/referrald" || return 1
	clone "$USER_PRIV/referrald" "$DEMO_USER" || return 1
}

teardown_file() {
	local d
	for d in "$ROOT_PRIV" "$USER_PRIV"; do
		[ -n "$d" ] || continue
		pkill -KILL -f -- "$d/" 2>/dev/null || true
	done
	# root's cluster lives outside the checkout, behind var/pg.
	for d in "$ROOT_PRIV"/*/var/pg; do
		[ -L "$d" ] || continue
		d=$(readlink "$d")
		"$REFD_PG_BIN/pg_ctl" status -D "$d/data" >/dev/null 2>&1 &&
			runuser -u postgres -- "$REFD_PG_BIN/pg_ctl" -D "$d/data" -m immediate stop >/dev/null 2>&1
		rm -rf "$d"
	done
	rm -rf "$ROOT_PRIV" "$USER_PRIV" "$REFD_TMP"
}

# clone DIR [USER]: tracked files of this tree, the binary under test.
clone() {
	mkdir -p "$1/build" || return 1
	git -C "$REFD_ROOT" ls-files -z | tar -C "$REFD_ROOT" --null -T - -cf - | tar -C "$1" -xf - || return 1
	cp "$REFD_BIN" "$1/build/referrald" || return 1
	[ -z "${2:-}" ] || chown -R "$2": "$1"
}

# start_demo DIR USER|"" LOG [ENV...]: runs deploy/demo.sh in the background
# in a process group of its own (so SIGINT reaches it as Ctrl-C would);
# DEMO_PID is the group's leader.
start_demo() {
	local dir=$1 user=$2 log=$3
	shift 3
	set -m
	if [ -n "$user" ]; then
		(cd "$dir" && exec runuser -u "$user" -- env "$@" sh deploy/demo.sh) >"$log" 2>&1 &
	else
		(cd "$dir" && exec env "$@" sh deploy/demo.sh) >"$log" 2>&1 &
	fi
	DEMO_PID=$!
	set +m
}

# wait_ready DIR PORT: credentials written and /healthz 200 over TLS, verified
# with the demo's own CA (up to 60 s). Prints the seconds it took.
wait_ready() {
	local i start=$SECONDS
	for i in $(seq 1 600); do
		if [ -s "$1/var/demo/credentials.env" ] && grep -q '^Ctrl-C stops' "$LOG" 2>/dev/null &&
			[ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$1/var/certs/ca.crt" \
				"https://127.0.0.1:$2/healthz")" = 200 ]; then
			echo $((SECONDS - start))
			return 0
		fi
		kill -0 "$DEMO_PID" 2>/dev/null || { cat "$LOG" >&2; return 1; }
		sleep 0.1
	done
	cat "$LOG" >&2
	return 1
}

# The postmaster of DIR's cluster (its pid file), while it runs.
postmaster_of() { head -n 1 "$1/var/pg/data/postmaster.pid" 2>/dev/null; }

# stop_demo SIGNAL DIR PM: the signal to the demo's process group; within 15 s
# no process of the checkout, and no postmaster PM or child of it, is left.
stop_demo() {
	local sig=$1 dir=$2 pm=$3 i
	kill "-$sig" -- "-$DEMO_PID"
	for i in $(seq 1 150); do
		if ! kill -0 "$DEMO_PID" 2>/dev/null && ! pgrep -f -- "$dir/" >/dev/null &&
			! kill -0 "$pm" 2>/dev/null && [ -z "$(pgrep -P "$pm")" ]; then
			wait "$DEMO_PID" || { echo "demo exited $?" >&2; return 1; }
			[ ! -e "$dir/var/pg/data/postmaster.pid" ]
			return
		fi
		sleep 0.1
	done
	echo "left behind after 15 s:" >&2
	pgrep -af -- "$dir/" >&2
	ps -o pid,ppid,args -p "$pm" >&2
	return 1
}

# The credentials file against the demo contract: every key, the paths exist.
check_contract() {
	local dir=$1 port=$2 k v
	for k in BASE_URL CA_CERT ADMIN_TOKEN SUPERVISOR_TOKEN WORKER_TOKEN OFFICE_TOKEN OFFICE_CERT OFFICE_KEY; do
		v=$(sed -n "s/^$k=//p" "$dir/var/demo/credentials.env")
		[ -n "$v" ] || { echo "credentials.env lacks $k" >&2; return 1; }
	done
	[ "$(cred "$dir" BASE_URL)" = "https://127.0.0.1:$port" ]
	for k in CA_CERT OFFICE_CERT OFFICE_KEY; do
		v=$(cred "$dir" "$k")
		case $v in /*) echo "$k is not relative to the project root" >&2; return 1 ;; esac
		[ -s "$dir/$v" ] || { echo "$k=$v does not exist" >&2; return 1; }
	done
}

cred() { sed -n "s/^$2=//p" "$1/var/demo/credentials.env"; }

# walk DIR: the commands the demo printed, run verbatim from the checkout,
# then the assignment the walk took and its state as its worker sees it.
walk() {
	local dir=$1 user=${2:-}
	sed -n '/^Credentials: var\/demo\/credentials.env/,/^Ctrl-C stops/p' "$LOG" | sed '1d;$d' \
		>"$REFD_TMP/walk.sh"
	grep -q '/complete' "$REFD_TMP/walk.sh"
	echo 'echo; echo "WALK_ASSIGNMENT=$A"' >>"$REFD_TMP/walk.sh"
	chmod 0644 "$REFD_TMP/walk.sh"
	chmod 0755 "$REFD_TMP"
	if [ -n "$user" ]; then
		(cd "$dir" && runuser -u "$user" -- sh -e "$REFD_TMP/walk.sh") >"$REFD_TMP/walk.out" 2>&1
	else
		(cd "$dir" && sh -e "$REFD_TMP/walk.sh") >"$REFD_TMP/walk.out" 2>&1
	fi
}

demo_api() { # demo_api DIR TOKEN_KEY PATH
	curl -sS --cacert "$1/var/certs/ca.crt" -H "Authorization: Bearer $(cred "$1" "$2")" \
		"$(cred "$1" BASE_URL)$3"
}

check_walk() {
	local dir=$1 a
	a=$(sed -n 's/^WALK_ASSIGNMENT=//p' "$REFD_TMP/walk.out")
	[ -n "$a" ] && [ "$a" != null ] || { cat "$REFD_TMP/walk.out" >&2; return 1; }
	# submit -> offer -> accept -> contact_made -> complete, as the API says now.
	[ "$(demo_api "$dir" WORKER_TOKEN "/v1/assignments/$a" | jq -r .status)" = completed ]
	# The supervisor's follow-up report counts it (its organisation's worker).
	demo_api "$dir" SUPERVISOR_TOKEN "/v1/reports/follow-up?group_by=worker" >"$REFD_TMP/report.json"
	jq -e '[.groups[].first_contact.met] | add >= 1' "$REFD_TMP/report.json" \
		>/dev/null || { cat "$REFD_TMP/report.json" >&2; return 1; }
}

@test "as root from a 0700 directory: serves over TLS, keeps the contract, the printed walk works, Ctrl-C leaves nothing" {
	local dir=$ROOT_PRIV/referrald port ops pm target
	port=$(refd_free_port) && ops=$(refd_free_port)
	LOG=$REFD_TMP/root1.log
	start_demo "$dir" "" "$LOG" DEMO_PORT="$port" DEMO_OPS_PORT="$ops" \
		DEMO_PG_TEMPLATE="$PG_TEMPLATE" DEMO_CERTS_FROM="$CERTS_CACHE"
	wait_ready "$dir" "$port" >"$REFD_TMP/root1.secs"
	# The checkout's permissions were left alone; the cluster is reached
	# through var/pg, which belongs to the checkout and names it.
	[ "$(stat -c %a "$ROOT_PRIV")" = 700 ]
	[ -L "$dir/var/pg" ]
	target=$(readlink "$dir/var/pg")
	[ "$(cat "$target/checkout")" = "$dir" ]
	[ "$(stat -c %U "$target/data")" = postgres ]
	! grep -q 'port = 5432' "$target/data/postgresql.conf"
	check_contract "$dir" "$port"
	walk "$dir"
	check_walk "$dir"
	# A second checkout asking for the same port is refused, naming this one,
	# and creates nothing.
	clone "$REFD_TMP/other"
	DEMO_PORT=$port DEMO_OPS_PORT=$(refd_free_port) run sh "$REFD_TMP/other/deploy/demo.sh"
	[ "$status" -ne 0 ]
	[[ "$output" == *"port $port (API) is in use by the demo of $dir"* ]]
	[ "$(printf '%s\n' "$output" | grep -c .)" -eq 1 ]
	[ ! -e "$REFD_TMP/other/var" ]
	pm=$(postmaster_of "$dir")
	[ -n "$pm" ]
	stop_demo INT "$dir" "$pm"
}

@test "as root, a second run reuses the cluster, keys and seeded network; SIGTERM leaves nothing" {
	local dir=$ROOT_PRIV/referrald port ops pm admin keys refs
	[ -s "$dir/var/demo/credentials.env" ]
	admin=$(cred "$dir" ADMIN_TOKEN)
	keys=$(sha256sum "$dir"/var/keys/* | sha256sum)
	port=$(refd_free_port) && ops=$(refd_free_port)
	LOG=$REFD_TMP/root2.log
	start_demo "$dir" "" "$LOG" DEMO_PORT="$port" DEMO_OPS_PORT="$ops"
	wait_ready "$dir" "$port" >"$REFD_TMP/root2.secs"
	grep -q 'reusing the seeded network' "$LOG"
	! grep -q 'creating a PostgreSQL 15 cluster' "$LOG"
	[ "$(cred "$dir" ADMIN_TOKEN)" = "$admin" ]
	[ "$(sha256sum "$dir"/var/keys/* | sha256sum)" = "$keys" ]
	# The same admin token works, and the first run's referral is still there.
	[ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$dir/var/certs/ca.crt" \
		-H "Authorization: Bearer $admin" "https://127.0.0.1:$port/metrics")" = 200 ]
	refs=$(demo_api "$dir" OFFICE_TOKEN /v1/referrals | jq '.items | length')
	[ "$refs" -ge 1 ]
	pm=$(postmaster_of "$dir")
	stop_demo TERM "$dir" "$pm"
	echo "# first run to /healthz: $(cat "$REFD_TMP/root1.secs") s, second: $(cat "$REFD_TMP/root2.secs") s" >&3
}

@test "as an unprivileged user from its 0700 directory: installed packages need no sudo, the demo serves, Ctrl-C leaves nothing" {
	local dir=$USER_PRIV/referrald port ops pm
	# make demo's package step: everything is installed, so it needs no root.
	run runuser -u "$DEMO_USER" -- sh "$dir/deploy/install-deps.sh"
	[ "$status" -eq 0 ]
	port=$(refd_free_port) && ops=$(refd_free_port)
	LOG=$REFD_TMP/user.log
	start_demo "$dir" "$DEMO_USER" "$LOG" DEMO_PORT="$port" DEMO_OPS_PORT="$ops" \
		DEMO_CERTS_FROM="$USER_CERTS"
	wait_ready "$dir" "$port" >/dev/null
	# The cluster is the user's own, inside the checkout.
	[ -d "$dir/var/pg/data" ] && [ ! -L "$dir/var/pg" ]
	[ "$(stat -c %U "$dir/var/pg/data")" = "$DEMO_USER" ]
	[ "$(stat -c %a "$USER_PRIV")" = 700 ]
	check_contract "$dir" "$port"
	walk "$dir" "$DEMO_USER"
	check_walk "$dir"
	pm=$(postmaster_of "$dir")
	[ -n "$pm" ]
	stop_demo INT "$dir" "$pm"
}

# refused DIR MESSAGE [ENV...]: demo.sh exits non-zero with MESSAGE and the
# checkout gains no var/ (and root's state directory nothing).
refused() {
	local dir=$1 msg=$2 before after
	shift 2
	before=$(ls /var/lib/postgresql/referrald-demo 2>/dev/null | sort)
	run env "$@" sh "$dir/deploy/demo.sh"
	[ "$status" -ne 0 ]
	[[ "$output" == *"$msg"* ]] || { echo "$output" >&2; return 1; }
	[ ! -e "$dir/var" ]
	after=$(ls /var/lib/postgresql/referrald-demo 2>/dev/null | sort)
	[ "$before" = "$after" ]
}

@test "refusals that change nothing: no binary, no initdb, a full disk" {
	local dir=$REFD_TMP/refuse
	clone "$dir"
	rm -f "$dir/build/referrald"
	refused "$dir" "build/referrald not found" DEMO_PORT="$(refd_free_port)" DEMO_OPS_PORT="$(refd_free_port)"
	cp "$REFD_BIN" "$dir/build/referrald"
	mkdir -p "$REFD_TMP/pgbin"
	ln -sf "$REFD_PG_BIN/pg_ctl" "$REFD_TMP/pgbin/pg_ctl"
	refused "$dir" "initdb is missing" PG_BIN="$REFD_TMP/pgbin" \
		DEMO_PORT="$(refd_free_port)" DEMO_OPS_PORT="$(refd_free_port)"
	# A disk with less room than a cluster needs (the threshold raised above
	# what this disk has free, so the real df figure is compared).
	refused "$dir" "not enough free disk space" DEMO_MIN_FREE_MB=999999999 \
		DEMO_PORT="$(refd_free_port)" DEMO_OPS_PORT="$(refd_free_port)"
}

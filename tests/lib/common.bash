# shellcheck shell=bash
# tests/lib/common.bash - the integration harness every .bats file loads.
#
# Owns: private PostgreSQL clusters, dev certificates, key files, daemon
# configurations and daemon processes for tests, all under one mktemp dir.
# Must never: use fixed ports (8443, 5432, ...), touch var/ or anything outside
# its temp dir, or leave processes behind.
#
# Usage in a .bats file (one cluster and one daemon serve the whole file):
#
#   load ../lib/common
#   setup_file()    { refd_setup_file; }      # pg + certs + keys + config + daemon "main"
#   teardown_file() { refd_teardown_file; }
#
#   @test "..." {
#       call "" GET /healthz                   # -> $HTTP_STATUS, $HTTP_BODY, $HTTP_HEADERS
#       expect_status 200
#       call "$T" POST /v1/referrals "$json"   # tests/lib/client.bash
#       sql 'select count(*) from referrals'   # superuser psql on the test db
#   }
#
# Variables (exported by refd_setup_file, so every @test sees them):
#   REFD_ROOT        project root            REFD_BIN      the daemon binary ($BUILD/referrald)
#   REFD_TMP         this file's temp dir    REFD_LOG      daemon "main"'s stderr+stdout
#   REFD_CERTS       dev PKI (deploy/gen-certs.sh): ca.crt server.* office.* office2.*
#                    foreign.* (foreign CA) expired.*      REFD_CA = $REFD_CERTS/ca.crt
#   REFD_KEYS        uic.key, data.keys, token.key, audit-head.key (Ed25519) (mode 0600)
#   REFD_CONF        daemon "main"'s config file
#   REFD_PORT / REFD_URL             public listener (client cert optional)
#   REFD_MTLS_PORT / REFD_MTLS_URL   listener that requires a client cert
#   REFD_OPS_PORT / REFD_OPS_URL     metrics listener (/metrics /healthz /readyz)
#   REFD_PGPORT REFD_PGHOST (socket dir) REFD_PGDATA REFD_DB REFD_CONNINFO
#   REFD_KEYS_DB (the key store database, referrald_keys) REFD_KEYSTORE_CONNINFO
#   REFD_DB_USER (owns the database, runs migrations: REFD_MIGRATE_CONNINFO)
#   REFD_APP_USER (the daemon's runtime role: REFD_CONNINFO)
#
# Functions (all return non-zero on failure and print why on stderr):
#   refd_free_port                     a free TCP port on 127.0.0.1 (never handed out twice)
#   refd_pg_init / refd_pg_start / refd_pg_stop / refd_pg_restart
#   refd_pg_createdb NAME [OWNER]      refd_psql [psql args]   (superuser, on $REFD_DB)
#   refd_certs DIR                     refd_keys DIR
#   refd_config_write FILE PORT MTLS_PORT OPS_PORT   a complete config for this cluster
#   refd_config_set FILE SECTION KEY VALUE           change or add one key
#   refd_daemon_start NAME CONF [args] start in background, wait for /healthz (and readyz)
#   refd_daemon_stop NAME [SIGNAL]     SIGTERM (default), wait; fails unless exit 0 and no
#                                      sanitizer report in the log; prints the exit code
#   refd_daemon_pid NAME               refd_daemon_alive NAME
#   refd_instance NAME                 a second daemon on the same database: writes
#                                      $REFD_TMP/NAME.conf with fresh ports, starts it, and
#                                      prints "PORT MTLS_PORT OPS_PORT"
#   refd_wait_status URL CODE [SECS] [curl args]   poll until URL answers CODE
#   call, sql, ... (tests/lib/client.bash): the one dialect to talk to the daemon and
#                                      the database; refd_req is its old alias
#   refd_mint_admin_token [NAME]       prints a fresh admin bearer token (CLI, no network)
#
# Knobs (environment): BUILD (default build), REFD_KEEP_TMP=1 keeps the temp dir,
# REFD_CONF_NO_AUDIT=1 (configs without the [audit] section, for an older daemon),
# REFD_LIMITS_DEFAULT=1 (keep [limits] auth_failures at its default of 20 a minute),
# REFD_CACHE (a directory shared by one run: template cluster and certificates;
# tests/run.sh sets it),
# REFD_DB_USER (default referrald: a non-superuser role owning the database),
# REFD_START_TIMEOUT (seconds, default 30; sanitizer builds are slow).

REFD_ROOT=${REFD_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
REFD_PG_BIN=${REFD_PG_BIN:-/usr/lib/postgresql/15/bin}
REFD_DB=${REFD_DB:-referrald}
REFD_KEYS_DB=${REFD_KEYS_DB:-${REFD_DB}_keys}
REFD_DB_USER=${REFD_DB_USER:-referrald}
REFD_APP_USER=${REFD_APP_USER:-referrald_app}
REFD_START_TIMEOUT=${REFD_START_TIMEOUT:-30}
case ${BUILD:-build} in
/*) REFD_BIN=${REFD_BIN:-$BUILD/referrald} ;;
*) REFD_BIN=${REFD_BIN:-$REFD_ROOT/${BUILD:-build}/referrald} ;;
esac
# Started as root, the daemon switches to [server] user after binding (it
# refuses to stay root): the harness names this one, and what the daemon reads
# after the switch (certificates on SIGHUP) must be that user's (refd_give).
REFD_RUN_USER=${REFD_RUN_USER:-postgres}
export REFD_ROOT REFD_PG_BIN REFD_DB REFD_KEYS_DB REFD_DB_USER REFD_APP_USER REFD_BIN REFD_START_TIMEOUT
export REFD_RUN_USER

_refd_err() { echo "harness: $*" >&2; }

# Run a command as the cluster's owner: initdb and postgres refuse root, so as
# root the cluster belongs to the postgres user. cd / because the caller's
# directory may not be readable by that user.
refd_as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

# A port nobody listens on, picked at random so parallel runs do not collide,
# and remembered so two calls in one file never hand out the same one before
# it is bound.
refd_free_port() {
	local p i used=${REFD_TMP:-/tmp}/ports.used lo=10000 hi eph
	# Below the kernel's ephemeral range: an outgoing connection (curl, psql,
	# the daemon's own pool) can take any port in that range between our
	# check and the daemon's bind.
	eph=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
	hi=$((${eph:-32768} - 1))
	[ "$hi" -gt $((lo + 1000)) ] || { lo=1025; hi=$((${eph:-32768} - 1)); }
	for i in $(seq 1 200); do
		p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
		grep -qx "$p" "$used" 2>/dev/null && continue
		if [ -z "$(ss -Htan "( sport = :$p or dport = :$p )" 2>/dev/null)" ]; then
			echo "$p" >>"$used"
			echo "$p"
			return 0
		fi
	done
	_refd_err "no free port found"
	return 1
}

# ---------------------------------------------------------------- PostgreSQL

_refd_initdb() {
	refd_as_pg "$REFD_PG_BIN/initdb" -D "$1" -U postgres --auth=trust \
		-E UTF8 --locale=C --no-sync >"$REFD_TMP/initdb.log" 2>&1 || {
		_refd_err "initdb failed:"
		cat "$REFD_TMP/initdb.log" >&2
		return 1
	}
}

# REFD_CACHE (set by tests/run.sh for one run) holds one initdb'ed, never
# started cluster and one set of dev certificates that every file copies.
# Built by whichever file comes first; a rename makes it appear whole.
_refd_pg_template() {
	local d=$REFD_CACHE/pg tmp
	[ -f "$d/template/PG_VERSION" ] && return 0
	mkdir -p "$d" || return 1
	if [ "$(id -u)" -eq 0 ]; then
		chmod 0755 "$REFD_CACHE" && chown postgres: "$d" || return 1
	fi
	tmp=$d/build.$$
	_refd_initdb "$tmp" || return 1
	refd_as_pg mv -T "$tmp" "$d/template" 2>/dev/null || rm -rf "$tmp"
	[ -f "$d/template/PG_VERSION" ]
}

refd_pg_init() {
	REFD_PGHOST=$REFD_TMP/pg
	REFD_PGDATA=$REFD_PGHOST/data
	REFD_PGPORT=${REFD_PGPORT:-$(refd_free_port)} || return 1
	export REFD_PGHOST REFD_PGDATA REFD_PGPORT
	mkdir -p "$REFD_PGHOST" || return 1
	if [ "$(id -u)" -eq 0 ]; then
		chown postgres: "$REFD_PGHOST" || return 1
		# postgres must traverse the temp dir to reach its own directory.
		chmod 0755 "$REFD_TMP" || return 1
	fi
	if [ -n "${REFD_CACHE:-}" ] && _refd_pg_template; then
		# A copy of the run's freshly initialised cluster: seconds cheaper
		# than initdb for every .bats file.
		cp -a "$REFD_CACHE/pg/template" "$REFD_PGDATA" || return 1
	else
		_refd_initdb "$REFD_PGDATA" || return 1
	fi
	# Durability stays on (the daemon refuses to run without it); only
	# initdb's own syncing is skipped to keep the suite fast.
	refd_as_pg sh -c "cat >>'$REFD_PGDATA/postgresql.conf'" <<EOF
listen_addresses = '127.0.0.1'
port = $REFD_PGPORT
unix_socket_directories = '$REFD_PGHOST'
fsync = on
full_page_writes = on
synchronous_commit = on
max_connections = 100
shared_buffers = 32MB
log_min_messages = warning
log_line_prefix = '%m [%p] '
EOF
}

refd_pg_start() {
	refd_as_pg "$REFD_PG_BIN/pg_ctl" -D "$REFD_PGDATA" -l "$REFD_PGHOST/server.log" \
		-w -t 60 start >/dev/null || {
		_refd_err "pg_ctl start failed:"
		tail -n 20 "$REFD_PGHOST/server.log" >&2
		return 1
	}
}

refd_pg_stop() {
	[ -f "$REFD_PGDATA/postmaster.pid" ] || return 0
	refd_as_pg "$REFD_PG_BIN/pg_ctl" -D "$REFD_PGDATA" -m fast -w -t 60 stop >/dev/null
}

refd_pg_restart() {
	refd_pg_stop && refd_pg_start
}

refd_psql() {
	psql -X -q -v ON_ERROR_STOP=1 -h "$REFD_PGHOST" -p "$REFD_PGPORT" -U postgres \
		-d "$REFD_DB" "$@"
}

# refd_pg_createdb NAME [OWNER]: OWNER (created as a plain login role if
# missing) owns the database and applies the migrations; the daemon itself
# runs as $REFD_APP_USER, a login role that owns nothing and holds only the
# grants the migrations give it (so it cannot disable the audit triggers).
refd_pg_createdb() {
	local db=$1 owner=${2:-$REFD_DB_USER}
	psql -X -q -v ON_ERROR_STOP=1 -h "$REFD_PGHOST" -p "$REFD_PGPORT" -U postgres -d postgres \
		-v db="$db" -v owner="$owner" -v app="$REFD_APP_USER" <<'EOF' >/dev/null || return 1
SELECT format('CREATE ROLE %I LOGIN', :'owner')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'owner') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'app')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner') \gexec
EOF
}

# ------------------------------------------------------- certificates, keys

refd_certs() {
	local tmp
	if [ -n "${REFD_CACHE:-}" ]; then
		if [ ! -s "$REFD_CACHE/certs/expired.crt" ]; then
			mkdir -p "$REFD_CACHE" && tmp=$(mktemp -d "$REFD_CACHE/certs.XXXXXX") &&
				sh "$REFD_ROOT/deploy/gen-certs.sh" "$tmp" &&
				{ mv -T "$tmp" "$REFD_CACHE/certs" 2>/dev/null || rm -rf "$tmp"; }
		fi
		mkdir -p "$1" && cp -p "$REFD_CACHE"/certs/* "$1"/ 2>/dev/null
	fi
	# Creates whatever is missing (everything, without a cache).
	sh "$REFD_ROOT/deploy/gen-certs.sh" "$1"
}

# refd_give PATH...: as root, hand PATH (recursively) to $REFD_RUN_USER.
refd_give() {
	[ "$(id -u)" -eq 0 ] || return 0
	chown -R "$REFD_RUN_USER": "$@"
}

refd_keys() {
	local d=$1
	mkdir -p "$d" && chmod 0700 "$d" || return 1
	(
		umask 077
		[ -s "$d/uic.key" ] || openssl rand -hex 32 >"$d/uic.key"
		[ -s "$d/data.keys" ] || echo "k1 $(openssl rand -hex 32)" >"$d/data.keys"
		[ -s "$d/token.key" ] || openssl rand -hex 32 >"$d/token.key"
		[ -s "$d/audit-head.key" ] || openssl genpkey -algorithm ed25519 -out "$d/audit-head.key"
	)
}

# ------------------------------------------------------------ configuration

# refd_config_write FILE PORT MTLS_PORT OPS_PORT
refd_config_write() {
	local f=$1 user=""
	[ "$(id -u)" -eq 0 ] && user="user = $REFD_RUN_USER"
	cat >"$f" <<EOF
# written by tests/lib/common.bash
[server]
$user
listen = 127.0.0.1:$2
client_cert = optional
mtls_listen = 127.0.0.1:$3
metrics_listen = 127.0.0.1:$4
max_body_size = 64k
max_header_size = 8k
read_timeout = 10s
write_timeout = 10s
idle_timeout = 60s
drain_timeout = 20s

[tls]
cert_file = $REFD_CERTS/server.crt
key_file = $REFD_CERTS/server.key
ca_file = $REFD_CERTS/ca.crt

[database]
conninfo = $REFD_CONNINFO
migrate_conninfo = $REFD_MIGRATE_CONNINFO
pool_size = 4
query_timeout = 15s
connect_timeout = 2s
reconnect_max = 1s

[security]
uic_key_file = $REFD_KEYS/uic.key
data_key_file = $REFD_KEYS/data.keys
token_key_file = $REFD_KEYS/token.key
key_store_conninfo = ${REFD_KEYSTORE_CONNINFO:-}

[deadlines]
sweeper_max_sleep = 1s

[webhooks]
# The tests' receiver listens on 127.0.0.1 (trust_tokens.bats turns it off).
allow_private_targets = on

[log]
level = info
format = logfmt
EOF
	# REFD_CONF_NO_AUDIT=1: for a daemon older than the [audit] section and
	# the keys issue 9 added (tests/bench/audit_ledger.sh runs one to
	# compare).
	if [ "${REFD_CONF_NO_AUDIT:-0}" = 1 ]; then
		sed -i -e '/^token_key_file = /d' -e '/^key_store_conninfo = /d' -e '/^allow_private_targets = /d' "$f"
	fi
	[ "${REFD_CONF_NO_AUDIT:-0}" = 1 ] || printf '\n[audit]\nsigning_key_file = %s\n' \
		"$REFD_KEYS/audit-head.key" >>"$f"
	# Every test comes from 127.0.0.1: a file may well test more than 20
	# refusals a minute, and the load tests hold 100 or more connections to
	# one daemon at once (on a fast machine more than the default 64 are open
	# together, and the daemon rightly refuses the rest). Both limits are
	# raised here, except for the file that tests the defaults
	# (REFD_LIMITS_DEFAULT=1).
	[ "${REFD_LIMITS_DEFAULT:-0}" = 1 ] || [ "${REFD_CONF_NO_AUDIT:-0}" = 1 ] ||
		printf '\n[limits]\nauth_failures = 1000/1m\nconnections_per_address = 1024\n' >>"$f"
}

# refd_config_set FILE SECTION KEY VALUE: replace KEY inside [SECTION], or add
# it at the end of that section (the section is appended when missing).
refd_config_set() {
	local f=$1 sec=$2 key=$3 val=$4 tmp
	tmp=$(mktemp) || return 1
	awk -v sec="$sec" -v key="$key" -v val="$val" '
		function flush() { if (insec && !done) { print key " = " val; done = 1 } }
		/^[ \t]*\[/ {
			flush()
			s = $0; gsub(/[][ \t]/, "", s); insec = (s == sec)
			print; next
		}
		insec && !done {
			k = $0; sub(/^[ \t]*/, "", k); sub(/[ \t]*=.*/, "", k)
			if (k == key) { print key " = " val; done = 1; next }
		}
		{ print }
		END { flush(); if (!done) { print "[" sec "]"; print key " = " val } }
	' "$f" >"$tmp" && cat "$tmp" >"$f"
	rm -f "$tmp"
}

_refd_conf_port() { # FILE KEY -> port of "KEY = host:port"
	awk -v key="$2" '{ k = $1 } k == key && $2 == "=" { n = split($3, a, ":"); print a[n]; exit }' "$1"
}

# ------------------------------------------------------------------ daemons

refd_daemon_pid() { cat "$REFD_TMP/daemon-$1.pid" 2>/dev/null; }

refd_daemon_alive() {
	local pid
	pid=$(refd_daemon_pid "$1") || return 1
	[ -n "$pid" ] && [ ! -e "$REFD_TMP/daemon-$1.rc" ] && kill -0 "$pid" 2>/dev/null
}

# refd_wait_status URL CODE [SECS] [curl args...]
refd_wait_status() {
	local url=$1 want=$2 secs=${3:-10} code i
	shift 3 2>/dev/null || shift $#
	for i in $(seq 1 $((secs * 10))); do
		code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$REFD_CA" \
			"$@" "$url" 2>/dev/null)
		[ "$code" = "$want" ] && return 0
		sleep 0.1
	done
	_refd_err "$url: wanted $want, last answer ${code:-none} after ${secs}s"
	return 1
}

# refd_daemon_start NAME CONF [extra args]: start in the background, stdout and
# stderr to $REFD_TMP/NAME.log, exit code to $REFD_TMP/daemon-NAME.rc when it
# ends (so any later bats process can read it). Waits for /healthz on the
# config's listen port, then up to 10 s for /readyz (not an error if not).
refd_daemon_start() {
	local name=$1 conf=$2 log port i
	shift 2
	log=$REFD_TMP/$name.log
	rm -f "$REFD_TMP/daemon-$name.pid" "$REFD_TMP/daemon-$name.rc"
	# fd 3 closed: bats waits for every holder of its fd 3 before finishing.
	(
		"$REFD_BIN" -c "$conf" "$@" </dev/null >>"$log" 2>&1 &
		echo $! >"$REFD_TMP/daemon-$name.pid"
		wait $!
		echo $? >"$REFD_TMP/daemon-$name.rc"
	) </dev/null >/dev/null 2>&1 3>&- &
	for i in $(seq 1 50); do
		[ -s "$REFD_TMP/daemon-$name.pid" ] && break
		sleep 0.1
	done
	port=$(_refd_conf_port "$conf" listen)
	for i in $(seq 1 $((REFD_START_TIMEOUT * 10))); do
		if [ -e "$REFD_TMP/daemon-$name.rc" ]; then
			_refd_err "daemon $name exited with $(cat "$REFD_TMP/daemon-$name.rc") at start:"
			tail -n 30 "$log" >&2
			return 1
		fi
		if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --cacert "$REFD_CA" \
			"https://127.0.0.1:$port/healthz" 2>/dev/null)" = 200 ]; then
			refd_wait_status "https://127.0.0.1:$port/readyz" 200 10 2>/dev/null || true
			return 0
		fi
		sleep 0.1
	done
	_refd_err "daemon $name: no /healthz on port $port after ${REFD_START_TIMEOUT}s:"
	tail -n 30 "$log" >&2
	return 1
}

# Sanitizer reports in a daemon log mean failure even when the exit code is 0.
refd_log_clean() {
	if grep -E -n 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|Sanitizer has encountered|runtime error:|SUMMARY: .*Sanitizer' \
		"$1" >&2; then
		_refd_err "sanitizer report in $1"
		return 1
	fi
	return 0
}

# refd_daemon_stop NAME [SIGNAL]: prints the exit code; returns 0 only when the
# daemon exited 0 within drain time (+10 s) with a clean log.
refd_daemon_stop() {
	local name=$1 sig=${2:-TERM} pid rc i
	pid=$(refd_daemon_pid "$name") || { _refd_err "daemon $name was never started"; return 1; }
	[ -e "$REFD_TMP/daemon-$name.rc" ] || kill -s "$sig" "$pid" 2>/dev/null
	for i in $(seq 1 400); do
		[ -s "$REFD_TMP/daemon-$name.rc" ] && break
		sleep 0.1
	done
	if [ ! -s "$REFD_TMP/daemon-$name.rc" ]; then
		_refd_err "daemon $name did not exit within 40s of SIG$sig; killing it"
		kill -KILL "$pid" 2>/dev/null
		return 1
	fi
	rc=$(cat "$REFD_TMP/daemon-$name.rc")
	echo "$rc"
	refd_log_clean "$REFD_TMP/$name.log" || return 1
	if [ "$rc" != 0 ]; then
		_refd_err "daemon $name exited with $rc:"
		tail -n 20 "$REFD_TMP/$name.log" >&2
		return 1
	fi
}

# refd_instance NAME: another daemon on the same database and certificates.
refd_instance() {
	local name=$1 p m o
	p=$(refd_free_port) && m=$(refd_free_port) && o=$(refd_free_port) || return 1
	refd_config_write "$REFD_TMP/$name.conf" "$p" "$m" "$o"
	refd_daemon_start "$name" "$REFD_TMP/$name.conf" || return 1
	echo "$p $m $o"
}

# ------------------------------------------------------------------ clients

# refd_mint_admin_token [NAME]: the token is the last line the CLI prints.
refd_mint_admin_token() {
	local out
	out=$("$REFD_BIN" -c "${REFD_CONF:?}" --mint-admin-token "${1:-test-admin}" 2>>"$REFD_TMP/cli.log") ||
		{ _refd_err "--mint-admin-token failed"; tail -n 5 "$REFD_TMP/cli.log" >&2; return 1; }
	printf '%s\n' "$out" | tail -n 1
}

# ------------------------------------------------------------ file fixtures

refd_setup_file() {
	REFD_TMP=$(mktemp -d "${TMPDIR:-/tmp}/refd-test.XXXXXX") || return 1
	export REFD_TMP
	[ -x "$REFD_BIN" ] || { _refd_err "$REFD_BIN missing: run make first"; return 1; }
	REFD_CERTS=$REFD_TMP/certs
	REFD_KEYS=$REFD_TMP/keys
	REFD_CA=$REFD_CERTS/ca.crt
	REFD_CONF=$REFD_TMP/main.conf
	REFD_LOG=$REFD_TMP/main.log
	export REFD_CERTS REFD_KEYS REFD_CA REFD_CONF REFD_LOG
	refd_pg_init || return 1
	refd_pg_start || return 1
	refd_pg_createdb "$REFD_DB" || return 1
	# The key store: a database of its own in the same cluster, owned by
	# the daemon's role (it creates its one table), never in a dump of
	# $REFD_DB.
	refd_pg_createdb "$REFD_KEYS_DB" "$REFD_APP_USER" || return 1
	REFD_CONNINFO="host=127.0.0.1 port=$REFD_PGPORT dbname=$REFD_DB user=$REFD_APP_USER application_name=referrald"
	REFD_MIGRATE_CONNINFO="host=127.0.0.1 port=$REFD_PGPORT dbname=$REFD_DB user=$REFD_DB_USER application_name=referrald-migrate"
	REFD_KEYSTORE_CONNINFO="host=127.0.0.1 port=$REFD_PGPORT dbname=$REFD_KEYS_DB user=$REFD_APP_USER application_name=referrald-keys"
	export REFD_CONNINFO REFD_MIGRATE_CONNINFO REFD_KEYSTORE_CONNINFO
	refd_certs "$REFD_CERTS" && refd_give "$REFD_CERTS" || return 1
	refd_keys "$REFD_KEYS" || return 1
	REFD_PORT=$(refd_free_port) && REFD_MTLS_PORT=$(refd_free_port) &&
		REFD_OPS_PORT=$(refd_free_port) || return 1
	REFD_URL=https://127.0.0.1:$REFD_PORT
	REFD_MTLS_URL=https://127.0.0.1:$REFD_MTLS_PORT
	REFD_OPS_URL=https://127.0.0.1:$REFD_OPS_PORT
	export REFD_PORT REFD_MTLS_PORT REFD_OPS_PORT REFD_URL REFD_MTLS_URL REFD_OPS_URL
	refd_config_write "$REFD_CONF" "$REFD_PORT" "$REFD_MTLS_PORT" "$REFD_OPS_PORT"
	[ "${REFD_NO_DAEMON:-0}" = 1 ] && return 0
	refd_daemon_start main "$REFD_CONF"
}

# Stops every daemon of this file (SIGTERM, then SIGKILL) and the cluster.
refd_teardown_file() {
	local f name
	[ -n "${REFD_TMP:-}" ] && [ -d "$REFD_TMP" ] || return 0
	for f in "$REFD_TMP"/daemon-*.pid; do
		[ -e "$f" ] || continue
		name=${f##*/daemon-}
		name=${name%.pid}
		if refd_daemon_alive "$name"; then
			refd_daemon_stop "$name" >/dev/null || true
		fi
	done
	refd_pg_stop || true
	if [ "${REFD_KEEP_TMP:-0}" = 1 ]; then
		echo "# harness: kept $REFD_TMP" >&3
	else
		rm -rf "$REFD_TMP"
	fi
}

# The one dialect of requests and queries (and the old names as aliases).
# shellcheck source=client.bash
source "$REFD_ROOT/tests/lib/client.bash"

#!/bin/sh
# demo.sh - run referrald locally: a private PostgreSQL cluster belonging to
# this checkout (var/pg), dev certificates under var/certs, keys under
# var/keys, config and credentials under var/demo, a seeded demo network, and
# the daemon in the foreground on https://127.0.0.1:8443 (metrics on
# https://127.0.0.1:9443).
#
#   sh deploy/demo.sh [path/to/referrald]       (make demo)
#
# Works from a checkout in any directory the invoking user can write:
#  - as an ordinary user, the cluster runs as that user inside var/pg;
#  - as root, initdb refuses to run, so the cluster runs as the postgres user.
#    That user may not be able to enter the checkout (a 0700 home, mktemp -d),
#    so the cluster's files live in a directory of its own under
#    /var/lib/postgresql/referrald-demo/ named after this checkout, and var/pg
#    is a symbolic link to it. The directory holds a file `checkout` naming
#    the checkout it belongs to. No permission of the checkout or its parents
#    is changed, no system PostgreSQL service is touched and port 5432 is
#    never used (the cluster listens on a random free loopback port).
#
# Ctrl-C (SIGINT) or SIGTERM stops the daemon, then the cluster, within 15 s.
# Running it again reuses var/: the cluster, the keys (so sealed data stays
# readable), the certificates and, while its admin token still works, the
# seeded network.
#
# Environment (all optional):
#   DEMO_PORT, DEMO_OPS_PORT  the API and metrics ports (8443, 9443)
#   DEMO_STATE_DIR            where root keeps clusters
#                             (/var/lib/postgresql/referrald-demo)
#   DEMO_MIN_FREE_MB          free disk space required before anything is
#                             created (300 for a new cluster, 50 to reuse)
#   DEMO_PG_TEMPLATE          an initdb'ed, stopped cluster to copy instead of
#                             running initdb (the test suite passes its own)
#   DEMO_CERTS_FROM           a directory of dev certificates to copy first
#   PG_BIN                    PostgreSQL 15's binaries
#
# Owns: everything under var/ and, as root, this checkout's directory under
# DEMO_STATE_DIR. Must never: touch a system PostgreSQL, use port 5432,
# change permissions outside var/, or print key material (tokens go to
# var/demo/credentials.env, which the demo also prints, since they are
# throwaway dev credentials).
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd -P)
BIN=${1:-build/referrald}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
VAR=$ROOT/var
CERTS=$VAR/certs
KEYS=$VAR/keys
DEMO=$VAR/demo
CONF=$DEMO/referrald.conf
CREDS=$DEMO/credentials.env
API_PORT=${DEMO_PORT:-8443}
OPS_PORT=${DEMO_OPS_PORT:-9443}
STATE_DIR=${DEMO_STATE_DIR:-/var/lib/postgresql/referrald-demo}
DB=referrald
DB_USER=referrald          # owns the database and applies migrations
APP_USER=referrald_app     # the daemon's runtime role (grants from the migrations)

say() { echo "demo: $*" >&2; }
die() {
	say "$*"
	exit 1
}

IS_ROOT=no
[ "$(id -u)" -eq 0 ] && IS_ROOT=yes

as_pg() {
	if [ "$IS_ROOT" = yes ]; then
		(cd / && runuser -u postgres -- "$@")
	else
		"$@"
	fi
}

port_busy() { [ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]; }

free_port() {
	for _ in $(seq 1 100); do
		p=$(awk -v s="$(od -An -N2 -tu2 /dev/urandom)" 'BEGIN { print 20000 + s % 30000 }')
		port_busy "$p" || {
			echo "$p"
			return 0
		}
	done
	return 1
}

# The checkout whose demo listens on PORT, if it is one: from the listening
# process's command line (referrald -c DIR/var/demo/referrald.conf), which ss
# shows to root and to the process's own user, else from the hint file a
# running demo leaves in the temp directory for other users.
demo_on_port() {
	pid=$(ss -Htlnp "sport = :$1" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n 1)
	if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ]; then
		conf=$(tr '\0' '\n' <"/proc/$pid/cmdline" | sed -n '/^-c$/{n;p;q}')
		case $conf in */var/demo/referrald.conf)
			echo "${conf%/var/demo/referrald.conf}"
			return 0
			;;
		esac
	fi
	hint=${TMPDIR:-/tmp}/referrald-demo.$1
	if [ -r "$hint" ]; then
		read -r hpid hdir <"$hint" || true
		if [ -n "${hpid:-}" ] && kill -0 "$hpid" 2>/dev/null; then
			echo "$hdir"
			return 0
		fi
	fi
	return 1
}

check_port() { # check_port PORT WHAT
	port_busy "$1" || return 0
	if other=$(demo_on_port "$1"); then
		if [ "$other" = "$ROOT" ]; then
			die "port $1 ($2) is in use by the demo of this checkout, already running"
		fi
		die "port $1 ($2) is in use by the demo of $other: stop it there (Ctrl-C) or set DEMO_PORT/DEMO_OPS_PORT"
	fi
	die "port $1 ($2) is in use by another program: stop it or set DEMO_PORT/DEMO_OPS_PORT"
}

# Free space in MB on the file system that holds PATH (or its nearest
# existing parent).
free_mb() {
	d=$1
	while [ ! -e "$d" ]; do d=$(dirname "$d"); done
	df -Pk "$d" | awk 'NR == 2 { print int($4 / 1024) }'
}

# ------------------------------------------------- checks (change nothing)
# Everything that can be known to fail is checked before anything is
# created, so a refused run leaves the checkout and the machine as they were.
[ -x "$BIN" ] || die "$BIN not found or not executable: the build failed or did not run (make)"
for c in curl jq openssl ss psql; do
	command -v "$c" >/dev/null 2>&1 || die "$c is missing: run make deps (or make demo) as root or with sudo"
done
[ -x "$PG_BIN/pg_ctl" ] || die "PostgreSQL 15 is not installed ($PG_BIN/pg_ctl missing): run make deps"
if [ "$IS_ROOT" = yes ]; then
	id postgres >/dev/null 2>&1 || die "there is no postgres user to run the cluster as (install postgresql-15)"
fi
[ "$API_PORT" != 5432 ] && [ "$OPS_PORT" != 5432 ] || die "port 5432 belongs to a system PostgreSQL; pick another"
check_port "$API_PORT" API
check_port "$OPS_PORT" metrics

# Where the cluster lives.
if [ -L "$VAR/pg" ]; then
	PGDIR=$(readlink "$VAR/pg")
elif [ -d "$VAR/pg" ] || [ "$IS_ROOT" = no ]; then
	PGDIR=$VAR/pg
else
	name=$(basename "$ROOT" | tr -c 'A-Za-z0-9._\n-' '_')
	PGDIR=$STATE_DIR/$name-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)
fi
PGDATA=$PGDIR/data
if [ -f "$PGDATA/PG_VERSION" ]; then
	NEW_CLUSTER=no
	need_mb=${DEMO_MIN_FREE_MB:-50}
else
	NEW_CLUSTER=yes
	need_mb=${DEMO_MIN_FREE_MB:-300}
	if [ -z "${DEMO_PG_TEMPLATE:-}" ] && [ ! -x "$PG_BIN/initdb" ]; then
		die "initdb is missing ($PG_BIN/initdb): install postgresql-15 (make deps)"
	fi
fi
for d in "$VAR" "$PGDIR"; do
	have=$(free_mb "$d")
	[ "$have" -ge "$need_mb" ] ||
		die "not enough free disk space for $d: ${have} MB free, $need_mb MB needed"
done
if [ "$IS_ROOT" = yes ] && [ -f "$PGDATA/PG_VERSION" ] &&
	! (cd / && runuser -u postgres -- test -r "$PGDATA/PG_VERSION"); then
	die "the postgres user cannot reach $PGDIR; remove var/pg to let the demo place the cluster where it can"
fi

mkdir -p "$VAR" "$DEMO"
chmod 0700 "$DEMO"
# One demo per checkout at a time (a second one would stop the first's cluster).
exec 9>"$DEMO/.lock"
flock -n 9 || die "another demo of this checkout is running (var/demo/.lock is held)"

# ------------------------------------------------------------ PostgreSQL
if [ "$NEW_CLUSTER" = yes ]; then
	# Only what this run creates is removed when it fails.
	created=
	if [ ! -d "$PGDIR" ]; then
		mkdir -p "$PGDIR"
		created=$PGDIR
	fi
	if [ "$PGDIR" != "$VAR/pg" ]; then
		# root: the directory postgres owns, outside the checkout.
		chmod 0755 "$STATE_DIR" 2>/dev/null || true
		chown postgres: "$PGDIR"
		chmod 0700 "$PGDIR"
		(cd / && runuser -u postgres -- test -w "$PGDIR") ||
			die "the postgres user cannot write $PGDIR (set DEMO_STATE_DIR to a directory it can reach)"
		printf '%s\n' "$ROOT" >"$PGDIR/checkout"
		ln -sfn "$PGDIR" "$VAR/pg"
	elif [ "$IS_ROOT" = yes ]; then
		chown postgres: "$PGDIR"
	fi
	fail_new() {
		[ -n "$created" ] && rm -rf "$created"
		[ -L "$VAR/pg" ] && [ -n "$created" ] && rm -f "$VAR/pg"
		die "$@"
	}
	if [ -n "${DEMO_PG_TEMPLATE:-}" ]; then
		say "creating a PostgreSQL 15 cluster in var/pg (from a template)"
		cp -a "$DEMO_PG_TEMPLATE" "$PGDATA" || fail_new "copying $DEMO_PG_TEMPLATE failed"
		if [ "$IS_ROOT" = yes ]; then
			chown -R postgres: "$PGDATA" && chmod 0700 "$PGDATA" || fail_new "cannot hand $PGDATA to postgres"
		fi
	else
		say "creating a PostgreSQL 15 cluster in var/pg"
		as_pg "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C \
			>"$DEMO/initdb.log" 2>&1 || {
			cat "$DEMO/initdb.log" >&2
			fail_new "initdb failed (log above; a full disk shows as 'No space left on device')"
		}
	fi
	# The socket lives in the cluster's directory when that path is short
	# enough for a unix socket name; TCP on loopback is used either way.
	sock=$PGDIR
	[ ${#PGDIR} -lt 90 ] || sock=
	as_pg sh -c "cat >>'$PGDATA/postgresql.conf'" <<PGEOF || fail_new "cannot write postgresql.conf"
listen_addresses = '127.0.0.1'
unix_socket_directories = '$sock'
fsync = on
full_page_writes = on
synchronous_commit = on
max_connections = 50
PGEOF
fi

# A cluster left running by an interrupted run (the lock above says no demo
# of this checkout is running now): stop it, then start on a port that is
# free now (the port is chosen at every start).
if as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
	say "stopping a cluster left running by an earlier run"
	as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w -t 20 stop >/dev/null
fi
PGPORT=$(free_port) || die "no free port for PostgreSQL"
# (9>&-: the cluster and the daemon must not inherit the lock.)
as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PGDIR/server.log" -o "-p $PGPORT" -w -t 60 start \
	>/dev/null 9>&- || {
	tail -n 20 "$PGDIR/server.log" >&2
	die "PostgreSQL did not start (log: var/pg/server.log)"
}

DAEMON_PID=
HINT_PID=
HINT=${TMPDIR:-/tmp}/referrald-demo.$API_PORT
stop_all() {
	trap - INT TERM EXIT
	if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
		say "stopping the daemon"
		kill -TERM "$DAEMON_PID" 2>/dev/null || true
		# Its drain is bounded by drain_timeout (5 s here); never hang.
		i=0
		while kill -0 "$DAEMON_PID" 2>/dev/null && [ "$i" -lt 80 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -KILL "$DAEMON_PID" 2>/dev/null || true
		wait "$DAEMON_PID" 2>/dev/null || true
	fi
	if [ -n "$HINT_PID" ] && [ "$(cut -d' ' -f1 "$HINT" 2>/dev/null)" = "$HINT_PID" ]; then
		rm -f "$HINT"
	fi
	say "stopping PostgreSQL"
	as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m fast -w -t 5 stop >/dev/null 2>&1 ||
		as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m immediate -w -t 5 stop >/dev/null 2>&1 || true
}
trap 'stop_all' EXIT
# Ctrl-C is the normal way to end the demo: clean stop, exit 0.
trap 'exit 0' INT TERM

psql_su() {
	psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres "$@"
}
psql_su -d postgres -v db="$DB" -v owner="$DB_USER" -v app="$APP_USER" <<'EOF' >/dev/null
SELECT format('CREATE ROLE %I LOGIN', :'owner')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'owner') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'app')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db' || '_keys', :'app')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db' || '_keys') \gexec
EOF

# ------------------------------------------------- certificates and keys
if [ -n "${DEMO_CERTS_FROM:-}" ] && [ ! -s "$CERTS/ca.crt" ]; then
	mkdir -p "$CERTS" && cp -p "$DEMO_CERTS_FROM"/* "$CERTS"/
fi
sh "$ROOT/deploy/gen-certs.sh" "$CERTS" >/dev/null
mkdir -p "$KEYS"
chmod 0700 "$KEYS"
(
	umask 077
	[ -s "$KEYS/uic.key" ] || openssl rand -hex 32 >"$KEYS/uic.key"
	[ -s "$KEYS/data.keys" ] || echo "k1 $(openssl rand -hex 32)" >"$KEYS/data.keys"
	[ -s "$KEYS/token.key" ] || openssl rand -hex 32 >"$KEYS/token.key"
)

# --------------------------------------------------------------- config
# The daemon runs as the unprivileged APP_USER; migrations run as the owner.
conninfo="host=127.0.0.1 port=$PGPORT dbname=$DB user=$APP_USER application_name=referrald-demo"
migrate_conninfo="host=127.0.0.1 port=$PGPORT dbname=$DB user=$DB_USER application_name=referrald-demo-migrate"
# The key store (each referral's data key, wrapped): a database of its own,
# owned by the daemon's role, never in a dump of $DB.
key_store_conninfo="host=127.0.0.1 port=$PGPORT dbname=${DB}_keys user=$APP_USER application_name=referrald-demo-keys"
# Started as root, the daemon refuses to stay root: it becomes nobody once
# its listeners are bound and its keys read.
run_user=""
[ "$(id -u)" -eq 0 ] && run_user="user = nobody"
cat >"$CONF" <<EOF
# written by deploy/demo.sh at every run (the PostgreSQL port changes)
[server]
$run_user
listen = 127.0.0.1:$API_PORT
client_cert = optional
metrics_listen = 127.0.0.1:$OPS_PORT
# Ctrl-C must end the demo quickly, even with a client connected.
drain_timeout = 5s

[tls]
cert_file = $CERTS/server.crt
key_file = $CERTS/server.key
ca_file = $CERTS/ca.crt

[database]
conninfo = $conninfo
migrate_conninfo = $migrate_conninfo
# One query in flight per connection: 4 capped every path at about 3,600
# trivial commits/s on two cores, where PostgreSQL itself commits 8-11k/s with
# 16-32 sessions (tests/bench). 16 stays well inside max_connections = 50.
pool_size = 16

[security]
uic_key_file = $KEYS/uic.key
data_key_file = $KEYS/data.keys
token_key_file = $KEYS/token.key
key_store_conninfo = $key_store_conninfo

[log]
level = info
format = logfmt
EOF

"$BIN" -c "$CONF" --check-config >/dev/null
"$BIN" -c "$CONF" --migrate

# --------------------------------------------------------------- daemon
say "starting referrald on https://127.0.0.1:$API_PORT (metrics on https://127.0.0.1:$OPS_PORT)"
# Its own session: Ctrl-C reaches only this script, whose trap then sends the
# daemon one SIGTERM (a second signal would cut its drain short).
if command -v setsid >/dev/null 2>&1; then
	setsid "$BIN" -c "$CONF" 9>&- &
else
	"$BIN" -c "$CONF" 9>&- &
fi
DAEMON_PID=$!
# For a demo of another user, which cannot see this process's sockets.
HINT_PID=$DAEMON_PID
# Written aside and renamed: a rename replaces whatever is at that name
# (even a planted symbolic link) instead of writing through it.
if hint_tmp=$(mktemp "${TMPDIR:-/tmp}/referrald-demo.XXXXXX" 2>/dev/null); then
	printf '%s %s\n' "$DAEMON_PID" "$ROOT" >"$hint_tmp" && chmod 0644 "$hint_tmp" &&
		mv -f "$hint_tmp" "$HINT" 2>/dev/null || rm -f "$hint_tmp"
fi

CA_CERT=var/certs/ca.crt
BASE_URL=https://127.0.0.1:$API_PORT
i=0
until [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$ROOT/$CA_CERT" "$BASE_URL/healthz")" = 200 ]; do
	kill -0 "$DAEMON_PID" 2>/dev/null || {
		DAEMON_PID=
		die "the daemon exited at start (its log is above)"
	}
	i=$((i + 1))
	[ "$i" -lt 300 ] || die "no answer on $BASE_URL/healthz after 30 s"
	sleep 0.1
done

# ----------------------------------------------------------------- seed
ADMIN_TOKEN= SUPERVISOR_TOKEN= WORKER_TOKEN= OFFICE_TOKEN=
if [ -f "$CREDS" ]; then
	ADMIN_TOKEN=$(sed -n 's/^ADMIN_TOKEN=//p' "$CREDS")
fi

api() { # api METHOD PATH [JSON] -> body on stdout; fails unless 2xx
	_out=$(curl -sS -X "$1" --cacert "$ROOT/$CA_CERT" -H "Authorization: Bearer $ADMIN_TOKEN" \
		-H 'Content-Type: application/json' ${3:+--data-binary "$3"} \
		-w '\n%{http_code}' "$BASE_URL$2") || return 1
	_code=$(printf '%s\n' "$_out" | tail -n 1)
	_body=$(printf '%s\n' "$_out" | sed '$d')
	case $_code in
	2??) printf '%s\n' "$_body" ;;
	*)
		say "$1 $2 answered $_code: $_body"
		return 1
		;;
	esac
}
id_of() { jq -er .id; }
token_for() { # token_for ROLE SUBJECT_ID
	api POST /v1/tokens "{\"role\":\"$1\",\"subject_id\":\"$2\",\"expires_at\":\"$EXPIRES\"}" |
		jq -er .token
}

seeded=no
if [ -n "$ADMIN_TOKEN" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$ROOT/$CA_CERT" \
	-H "Authorization: Bearer $ADMIN_TOKEN" "$BASE_URL/metrics")" = 200 ]; then
	say "reusing the seeded network and tokens in var/demo/credentials.env"
	seeded=yes
elif "$BIN" --help 2>&1 | grep -q -- --mint-admin-token; then
	say "minting an admin token and seeding the demo network"
	ADMIN_TOKEN=$("$BIN" -c "$CONF" --mint-admin-token "demo-admin-$(date +%s)" | tail -n 1)
	[ -n "$ADMIN_TOKEN" ] || die "--mint-admin-token printed no token"
	EXPIRES=$(date -u -d '+90 days' +%Y-%m-%dT%H:%M:%SZ)
	if [ -f "$ROOT/deploy/demo-seed.sh" ]; then
		# The API helpers' seed script: given BASE_URL, CA_CERT (absolute),
		# ADMIN_TOKEN, OFFICE_CERT and EXPIRES, it prints KEY=value lines
		# (SUPERVISOR_TOKEN, WORKER_TOKEN, OFFICE_TOKEN, and any extra).
		extra=$(BASE_URL=$BASE_URL CA_CERT=$ROOT/$CA_CERT ADMIN_TOKEN=$ADMIN_TOKEN \
			OFFICE_CERT=$CERTS/office.crt EXPIRES=$EXPIRES sh "$ROOT/deploy/demo-seed.sh") ||
			die "deploy/demo-seed.sh failed"
		eval "$(printf '%s\n' "$extra" | grep -E '^[A-Z_]+=[A-Za-z0-9._:/-]*$')"
		printf '%s\n' "$extra" | grep -E '^[A-Z_]+=' >"$DEMO/seed.env" || true
	else
		fp=$(openssl x509 -in "$CERTS/office.crt" -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)
		fp2=$(openssl x509 -in "$CERTS/office2.crt" -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)
		org1=$(api POST /v1/organisations '{"name":"Harm Reduction Network Bishkek"}' | id_of)
		org2=$(api POST /v1/organisations '{"name":"Legal Support Osh"}' | id_of)
		off1=$(api POST /v1/offices "{\"name\":\"Bishkek probation office\",\"region\":\"bishkek\",\"cert_fingerprint\":\"$fp\"}" | id_of)
		api POST /v1/offices "{\"name\":\"Osh probation office\",\"region\":\"osh\",\"cert_fingerprint\":\"$fp2\"}" >/dev/null
		w1=$(api POST /v1/workers "{\"organisation_id\":\"$org1\",\"kind\":\"harm_reduction\",\"handle\":\"hr-aibek\",\"regions\":[\"bishkek\",\"chui\"],\"languages\":[\"ky\",\"ru\"],\"capacity\":5}" | id_of)
		api POST /v1/workers "{\"organisation_id\":\"$org1\",\"kind\":\"harm_reduction\",\"handle\":\"hr-nurgul\",\"regions\":[\"osh\",\"osh-city\"],\"languages\":[\"ky\",\"uz\"],\"capacity\":4}" >/dev/null
		api POST /v1/workers "{\"organisation_id\":\"$org1\",\"kind\":\"harm_reduction\",\"handle\":\"hr-olga\",\"regions\":[\"bishkek\"],\"languages\":[\"ru\"],\"capacity\":3}" >/dev/null
		api POST /v1/workers "{\"organisation_id\":\"$org2\",\"kind\":\"legal_support\",\"handle\":\"legal-timur\",\"regions\":[\"bishkek\",\"osh\"],\"languages\":[\"ky\",\"ru\"],\"capacity\":6}" >/dev/null
		api POST /v1/workers "{\"organisation_id\":\"$org2\",\"kind\":\"legal_support\",\"handle\":\"legal-aida\",\"regions\":[\"osh\",\"osh-city\"],\"languages\":[\"ky\"],\"capacity\":4}" >/dev/null
		sup=$(api POST /v1/supervisors "{\"organisation_id\":\"$org1\",\"handle\":\"sup-gulnara\"}" | id_of)
		api POST /v1/supervisors "{\"organisation_id\":\"$org2\",\"handle\":\"sup-bakyt\"}" >/dev/null
		SUPERVISOR_TOKEN=$(token_for supervisor "$sup")
		WORKER_TOKEN=$(token_for worker "$w1")
		OFFICE_TOKEN=$(token_for office "$off1")
		: >"$DEMO/seed.env"
	fi
else
	say "this build cannot mint tokens yet (no --mint-admin-token): TLS entries only"
fi

if [ "$seeded" = yes ] && ! grep -qx "BASE_URL=$BASE_URL" "$CREDS"; then
	# Same network, another port this time (DEMO_PORT).
	sed "s|^BASE_URL=.*|BASE_URL=$BASE_URL|" "$CREDS" >"$CREDS.tmp" && mv "$CREDS.tmp" "$CREDS"
fi
if [ "$seeded" = no ]; then
	tmp=$CREDS.tmp
	umask 077
	{
		echo "# written by deploy/demo.sh; paths are relative to the project root"
		echo "BASE_URL=$BASE_URL"
		echo "CA_CERT=$CA_CERT"
		echo "ADMIN_TOKEN=$ADMIN_TOKEN"
		echo "SUPERVISOR_TOKEN=$SUPERVISOR_TOKEN"
		echo "WORKER_TOKEN=$WORKER_TOKEN"
		echo "OFFICE_TOKEN=$OFFICE_TOKEN"
		echo "OFFICE_CERT=var/certs/office.crt"
		echo "OFFICE_KEY=var/certs/office.key"
		[ -s "$DEMO/seed.env" ] && grep -v -E '^(BASE_URL|CA_CERT|ADMIN_TOKEN|SUPERVISOR_TOKEN|WORKER_TOKEN|OFFICE_TOKEN|OFFICE_CERT|OFFICE_KEY)=' "$DEMO/seed.env"
	} >"$tmp"
	mv "$tmp" "$CREDS"
fi

cat >&2 <<EOF

referrald demo is running on $BASE_URL  (metrics: https://127.0.0.1:$OPS_PORT/metrics)
Credentials: var/demo/credentials.env. In another shell, from the project root:

  set -a; . var/demo/credentials.env; set +a
  C="curl -sS --cacert \$CA_CERT -H Content-Type:application/json"
  \$C \$BASE_URL/healthz; \$C \$BASE_URL/readyz
  \$C https://127.0.0.1:$OPS_PORT/metrics | head

  # office (its client certificate; or -H "Authorization: Bearer \$OFFICE_TOKEN"): submit.
  # A Kyrgyz-speaking client in Bishkek: the harm-reduction need goes to the
  # worker of WORKER_TOKEN, the legal one to LEGAL_WORKER_TOKEN's.
  N=\$(date +%s)
  \$C --cert \$OFFICE_CERT --key \$OFFICE_KEY -H "Idempotency-Key: demo-\$N" \$BASE_URL/v1/referrals -d '{
    "external_ref": "BISH-'\$N'",
    "client": {"uic": "AB0312M85", "birth_year": 1985, "gender": "m", "languages": ["ky"],
               "region": "bishkek", "contact": {"phone": "+996555123456"}},
    "needs": ["harm_reduction", "legal_support"], "urgency": "normal",
    "consent": {"services": true, "report_back": true, "obtained_at": "2026-11-27T10:00:00Z"},
    "probation": {"starts_on": "2026-11-20", "ends_on": "2027-05-20"},
    "note": "prefers calls after 18:00"}'
  \$C -H "Authorization: Bearer \$OFFICE_TOKEN" \$BASE_URL/v1/referrals

  # worker: the inbox, accept, first contact, complete
  \$C -H "Authorization: Bearer \$WORKER_TOKEN" "\$BASE_URL/v1/assignments?status=offered"
  A=\$(\$C -H "Authorization: Bearer \$WORKER_TOKEN" "\$BASE_URL/v1/assignments?status=offered" | jq -r '.items[0].id')
  \$C -H "Authorization: Bearer \$WORKER_TOKEN" -X POST \$BASE_URL/v1/assignments/\$A/accept
  \$C -H "Authorization: Bearer \$WORKER_TOKEN" \$BASE_URL/v1/assignments/\$A/events \\
       -d '{"type": "contact_made", "at": "'\$(date -u +%Y-%m-%dT%H:%M:%SZ)'"}'
  \$C -H "Authorization: Bearer \$WORKER_TOKEN" \$BASE_URL/v1/assignments/\$A/complete \\
       -d '{"outcome": "linked_to_services"}'

  # supervisor: the organisation's assignments, deadlines, follow-up report, audit trail
  \$C -H "Authorization: Bearer \$SUPERVISOR_TOKEN" \$BASE_URL/v1/assignments
  \$C -H "Authorization: Bearer \$SUPERVISOR_TOKEN" "\$BASE_URL/v1/deadlines?state=pending"
  \$C -H "Authorization: Bearer \$SUPERVISOR_TOKEN" "\$BASE_URL/v1/reports/follow-up?group_by=worker"
  \$C -H "Authorization: Bearer \$SUPERVISOR_TOKEN" \$BASE_URL/v1/audit

  # admin: organisations, offices, workers, tokens (never client data)
  \$C -H "Authorization: Bearer \$ADMIN_TOKEN" \$BASE_URL/v1/organisations -d '{"name": "Another organisation"}'

Ctrl-C stops the daemon and PostgreSQL.
EOF

# The daemon runs until it exits or we are told to stop (the traps above).
set +e
wait "$DAEMON_PID"
rc=$?
DAEMON_PID=
exit "$rc"

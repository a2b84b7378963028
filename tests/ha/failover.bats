#!/usr/bin/env bats
# failover.bats - PostgreSQL failover loses nothing (issue 13, part 4).
#
# A primary and a synchronous standby (two private clusters), two daemons on a
# libpq multi-host conninfo (target_session_attrs=read-write) behind HAProxy
# (TCP passthrough, health-checked on /readyz), 500 submissions from 16
# clients that retry with their Idempotency-Key; mid-run the primary is
# SIGKILLed and the standby promoted with pg_ctl promote (what the HA
# manager does, one second of "detection" later). Expected: every
# acknowledged referral present exactly once, the daemons serving again
# without a restart, and their periodic jobs running on the new primary.
# The figures (503s, time to serve again, acknowledged, lost) are printed.
load ../lib/api

TOTAL=500
CLIENTS=16
KILL_AFTER=150   # acknowledged submissions before the primary dies

setup_file() {
	REFD_NO_DAEMON=1 refd_setup_file || return 1
	export API_URL API_CA API_TMP API_SECRETS API_ERRORS ADMIN_TOKEN OFFICE_TOKEN
	export SB_DATA SB_PORT PRIMARY_PORT HA_PORT HA_PID FO
	FO=$REFD_TMP/fo
	mkdir -p "$FO"
	API_CA=$REFD_CA
	API_TMP=$REFD_TMP/api
	API_SECRETS=$API_TMP/secrets
	API_ERRORS=$API_TMP/errors
	mkdir -p "$API_TMP" && : >"$API_SECRETS" && : >"$API_ERRORS"
	PRIMARY_PORT=$REFD_PGPORT

	# The primary waits for the standby named standby1 at every commit.
	refd_as_pg sh -c "cat >>'$REFD_PGDATA/postgresql.conf'" <<EOF || return 1
wal_level = replica
max_wal_senders = 4
synchronous_standby_names = 'standby1'
synchronous_commit = on
EOF
	refd_pg_restart || return 1
	SB_PORT=$(refd_free_port) || return 1
	SB_DATA=$REFD_PGHOST/standby
	refd_as_pg "$REFD_PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres \
		-D "$SB_DATA" -X stream -R -c fast >"$REFD_TMP/basebackup.log" 2>&1 || {
		cat "$REFD_TMP/basebackup.log" >&2
		return 1
	}
	# Promoted, it runs alone until a new standby joins (as Patroni's
	# non-strict synchronous mode does): it must not wait for itself.
	refd_as_pg sh -c "cat >>'$SB_DATA/postgresql.conf'" <<EOF || return 1
port = $SB_PORT
synchronous_standby_names = ''
EOF
	refd_as_pg sh -c "cat >>'$SB_DATA/postgresql.auto.conf'" <<EOF || return 1
primary_conninfo = 'host=127.0.0.1 port=$PRIMARY_PORT user=postgres application_name=standby1'
EOF
	refd_as_pg "$REFD_PG_BIN/pg_ctl" -D "$SB_DATA" -l "$REFD_PGHOST/standby.log" -w -t 60 \
		start >/dev/null || { tail -n 20 "$REFD_PGHOST/standby.log" >&2; return 1; }
	wait_sql "select sync_state from pg_stat_replication where application_name = 'standby1'" sync 30 ||
		return 1

	# Two daemons, each trying both servers for the one that takes writes.
	local name p ports=()
	for name in d1 d2; do
		p=$(refd_free_port) && ports+=("$p") || return 1
		refd_config_write "$REFD_TMP/$name.conf" "$p" "$(refd_free_port)" "$(refd_free_port)"
		refd_config_set "$REFD_TMP/$name.conf" database conninfo \
			"host=127.0.0.1,127.0.0.1 port=$PRIMARY_PORT,$SB_PORT dbname=$REFD_DB user=$REFD_APP_USER target_session_attrs=read-write connect_timeout=2"
		refd_config_set "$REFD_TMP/$name.conf" database migrate_conninfo \
			"host=127.0.0.1,127.0.0.1 port=$PRIMARY_PORT,$SB_PORT dbname=$REFD_DB user=$REFD_DB_USER target_session_attrs=read-write connect_timeout=2"
		# The key store is a database of the same cluster: it fails over too.
		refd_config_set "$REFD_TMP/$name.conf" security key_store_conninfo \
			"host=127.0.0.1,127.0.0.1 port=$PRIMARY_PORT,$SB_PORT dbname=$REFD_KEYS_DB user=$REFD_APP_USER target_session_attrs=read-write connect_timeout=2"
		refd_config_set "$REFD_TMP/$name.conf" database query_timeout 5s
		refd_config_set "$REFD_TMP/$name.conf" database pool_size 4
		refd_config_set "$REFD_TMP/$name.conf" deadlines sweeper_max_sleep 200ms
		refd_config_set "$REFD_TMP/$name.conf" webhooks poll_interval 200ms
		refd_daemon_start "$name" "$REFD_TMP/$name.conf" || return 1
	done
	echo "${ports[*]}" >"$FO/daemon-ports"

	# HAProxy passes TLS through and sends a request only to a daemon whose
	# /readyz answers 200 (deploy/ha/haproxy.cfg is the reference).
	HA_PORT=$(refd_free_port) || return 1
	cat >"$FO/haproxy.cfg" <<EOF
global
	maxconn 512
defaults
	mode tcp
	timeout connect 2s
	timeout client 30s
	timeout server 30s
frontend api
	bind 127.0.0.1:$HA_PORT
	default_backend daemons
backend daemons
	balance roundrobin
	option httpchk
	http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host localhost
	http-check expect status 200
	default-server check check-ssl verify none inter 300ms fall 2 rise 1
	server d1 127.0.0.1:${ports[0]}
	server d2 127.0.0.1:${ports[1]}
EOF
	haproxy -q -db -f "$FO/haproxy.cfg" </dev/null >"$FO/haproxy.log" 2>&1 3>&- &
	HA_PID=$!
	API_URL=https://127.0.0.1:$HA_PORT
	refd_wait_status "$API_URL/readyz" 200 20 || return 1

	ADMIN_TOKEN=$("$REFD_BIN" -c "$REFD_TMP/d1.conf" --mint-admin-token "ha-$(rand_hex 4)" | tail -n 1)
	[ -n "$ADMIN_TOKEN" ] || return 1
	local org office i
	org=$(mk_org) && office=$(mk_office) || return 1
	for i in 1 2 3 4; do
		mk_worker "$org" harm_reduction bishkek ky,ru 1000 >/dev/null || return 1
		mk_worker "$org" legal_support bishkek ky,ru 1000 >/dev/null || return 1
	done
	mk_supervisor "$org" >/dev/null || return 1
	OFFICE_TOKEN=$(mk_token office "$office") || return 1
}

teardown_file() {
	[ -n "${HA_PID:-}" ] && kill "$HA_PID" 2>/dev/null
	if [ -n "${SB_DATA:-}" ] && [ -f "$SB_DATA/postmaster.pid" ]; then
		refd_as_pg "$REFD_PG_BIN/pg_ctl" -D "$SB_DATA" -m fast -w -t 60 stop >/dev/null
	fi
	refd_teardown_file
}

# client I COUNT: COUNT submissions, each retried with its own key until
# acknowledged (2xx) or 90 s have passed. One line per attempt in cI.attempts:
# "start end code retry_after key"; one per acknowledgement in cI.acks:
# "key id external_ref".
client() {
	local i=$1 n=$2 j key code t0 start ra out=$FO/c$1
	for ((j = 1; j <= n; j++)); do
		key="ha-$i-$j-$(rand_hex 6)"
		referral_json >"$out.req"
		start=${EPOCHREALTIME%.*}
		while :; do
			t0=$EPOCHREALTIME
			code=$(curl -s --cacert "$REFD_CA" --max-time 10 -o "$out.resp" -D "$out.hdr" \
				-w '%{http_code}' -H "Authorization: Bearer $OFFICE_TOKEN" \
				-H 'Content-Type: application/json' -H "Idempotency-Key: $key" \
				--data-binary "@$out.req" "$API_URL/v1/referrals") || code=000
			ra=$(tr -d '\r' <"$out.hdr" 2>/dev/null | awk -F': ' 'tolower($1) == "retry-after" { print $2 }')
			echo "$t0 $EPOCHREALTIME $code ${ra:--} $key" >>"$out.attempts"
			case $code in
			200 | 201)
				echo "$key $(jq -r '.id + " " + .external_ref' "$out.resp")" >>"$out.acks"
				break
				;;
			400 | 401 | 403 | 404 | 413 | 422)
				echo "$key $code" >>"$out.refused"
				break
				;;
			esac
			if [ $((${EPOCHREALTIME%.*} - start)) -gt 90 ]; then
				echo "$key" >>"$out.gaveup"
				break
			fi
			sleep 0.2
		done
	done
}

@test "a session that lands on a standby: writes answer 503 with Retry-After, change nothing, and it is dropped" {
	local c=$REFD_TMP/d3.conf n0 key
	# No target_session_attrs: libpq accepts the standby as it is.
	refd_config_write "$c" "$(refd_free_port)" "$(refd_free_port)" "$(refd_free_port)"
	refd_config_set "$c" database conninfo \
		"host=127.0.0.1 port=$SB_PORT dbname=$REFD_DB user=$REFD_APP_USER connect_timeout=2"
	refd_config_set "$c" database migrate_conninfo \
		"host=127.0.0.1 port=$PRIMARY_PORT dbname=$REFD_DB user=$REFD_DB_USER"
	refd_daemon_start d3 "$c"
	n0=$(sql "select count(*) from referrals")
	key=$(new_key)
	API_URL=https://127.0.0.1:$(awk '$1 == "listen" { split($3, a, ":"); print a[2] }' "$c") \
		submit "$OFFICE_TOKEN" "$(referral_json)" "$key"
	expect_status 503
	[ -n "$(header Retry-After)" ]
	[ "$(sql "select count(*) from referrals")" = "$n0" ]
	[ "$(sql "select count(*) from idempotency_keys where key = '$key'")" = 0 ]
	grep -q 'event=db_conn_lost .*reason=read_only' "$REFD_TMP/d3.log"
	refd_daemon_stop d3
}

@test "500 submissions through a primary SIGKILL and a promotion: every acknowledged one once, none lost" {
	local i n pids=() t_kill t_prom acks
	: >"$FO/all.attempts"
	for ((i = 0; i < CLIENTS; i++)); do
		n=$((TOTAL / CLIENTS))
		[ "$i" -lt $((TOTAL % CLIENTS)) ] && n=$((n + 1))
		client "$i" "$n" 3>&- &
		pids+=($!)
	done
	for _ in $(seq 1 1200); do
		acks=$(cat "$FO"/c*.acks 2>/dev/null | wc -l)
		[ "$acks" -ge "$KILL_AFTER" ] && break
		sleep 0.05
	done
	[ "$acks" -ge "$KILL_AFTER" ]
	t_kill=$EPOCHREALTIME
	kill -KILL "$(head -n 1 "$REFD_PGDATA/postmaster.pid")"
	sleep 1
	refd_as_pg "$REFD_PG_BIN/pg_ctl" -D "$SB_DATA" -w -t 60 promote >/dev/null
	t_prom=$EPOCHREALTIME
	echo "$t_kill $t_prom" >"$FO/times"
	wait "${pids[@]}"
	cat "$FO"/c*.attempts >"$FO/all.attempts"
	cat "$FO"/c*.acks >"$FO/all.acks"

	# From here on the standby is the primary.
	export REFD_PGPORT=$SB_PORT
	[ "$(sql 'select pg_is_in_recovery()')" = f ]
	local acked ids lost dup n503 n000 noretry serve_again
	acked=$(wc -l <"$FO/all.acks")
	ids=$(awk '{ print $2 }' "$FO/all.acks" | sort -u | wc -l)
	awk '{ print $2 }' "$FO/all.acks" | sort -u >"$FO/acked.ids"
	sql "select id from referrals" | sort >"$FO/db.ids"
	lost=$(comm -23 "$FO/acked.ids" "$FO/db.ids" | wc -l)
	# external_ref is sealed; its keyed hash stands for it.
	dup=$(sql "select count(*) - count(distinct external_ref_hash) from referrals")
	n503=$(awk '$3 == 503' "$FO/all.attempts" | wc -l)
	noretry=$(awk '$3 == 503 && $4 == "-"' "$FO/all.attempts" | wc -l)
	n000=$(awk '$3 == "000"' "$FO/all.attempts" | wc -l)
	serve_again=$(awk -v k="${t_kill}" '($3 == 200 || $3 == 201) && $1 > k { d = $2 - k; if (!m || d < m) m = d }
		END { printf "%.1f", m }' "$FO/all.attempts")
	{
		echo "# acknowledged: $acked of $TOTAL (distinct referral ids: $ids), lost: $lost, duplicates: $dup"
		echo "# during the switch: $n503 answers 503 (all with Retry-After: $([ "$noretry" = 0 ] && echo yes || echo no)), $n000 refused connections or timeouts"
		echo "# served again $serve_again s after the SIGKILL ($(awk -v a="$t_kill" -v b="$t_prom" 'BEGIN { printf "%.1f", b - a }') s of it before the promotion)"
	} | tee "$FO/figures" >&3
	# Nothing refused as bad input, nobody gave up.
	[ -z "$(cat "$FO"/c*.refused 2>/dev/null)" ]
	[ -z "$(cat "$FO"/c*.gaveup 2>/dev/null)" ]
	[ "$acked" -eq "$TOTAL" ]
	[ "$ids" -eq "$TOTAL" ]
	[ "$lost" -eq 0 ]
	[ "$dup" -eq 0 ]
	[ "$(sql "select count(*) from referrals")" -eq "$TOTAL" ]
	[ "$noretry" -eq 0 ]
	# Every client's key maps to exactly one idempotency record.
	[ "$(sql "select count(*) from idempotency_keys where key like 'ha-%'")" -eq "$TOTAL" ]
}

@test "the daemons serve again without a restart, both connected to the new primary" {
	local name p
	export REFD_PGPORT=$SB_PORT
	for name in d1 d2; do
		refd_daemon_alive "$name"
		! grep -q 'event=start ' <(sed '1,/event=ready/d' "$REFD_TMP/$name.log")
	done
	for p in $(cat "$FO/daemon-ports"); do
		refd_wait_status "https://127.0.0.1:$p/readyz" 200 10
	done
	# Both pools (4 connections each: more than one daemon could hold) are
	# whole again on the new primary.
	wait_sql "select count(*) from pg_stat_activity where usename = '$REFD_APP_USER' and application_name = 'referrald' and datname = '$REFD_DB'" 8 15
	grep -q 'reason=read_only\|reason=server_closed\|reason=connection_bad' "$REFD_TMP/d1.log" "$REFD_TMP/d2.log"
}

@test "the sweeper and the outbox sender run on the new primary" {
	local ref a
	export REFD_PGPORT=$SB_PORT
	as_admin PUT /v1/deadline-policies/harm_reduction/urgent '{"accept_within":"PT1S","first_contact_within":"PT1H"}'
	expect_status 200
	submit "$OFFICE_TOKEN" "$(referral_json '.needs = ["harm_reduction"] | .urgency = "urgent"')"
	expect_status 201
	ref=$(jget .id)
	a=$(jget '.assignments[0].id')
	# The accept deadline passes; a sweeper marks it missed and escalates.
	wait_sql "select count(*) from deadlines where assignment_id = '$a' and kind = 'accept' and state = 'missed'" 1 20
	wait_sql "select count(*) > 0 from escalations where assignment_id = '$a'" t 10
	# Every event written since the promotion has been handled by a sender.
	wait_sql "select count(*) from outbox where delivered_at is null and attempts = 0 and created_at > now() - interval '1 minute'" 0 20
	[ -n "$ref" ]
}

@test "after the failover both daemons stop cleanly (exit 0, clean logs)" {
	refd_daemon_stop d1
	refd_daemon_stop d2
}

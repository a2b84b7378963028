#!/bin/sh
# demo-seed.sh - seed the demo network through the admin API (curl + jq).
#
# Interface (deploy/demo.sh calls it; usable by hand too):
#   BASE_URL=https://127.0.0.1:8443 CA_CERT=/abs/ca.crt ADMIN_TOKEN=... \
#   [OFFICE_CERT=/abs/office.crt] [EXPIRES=2027-01-01T00:00:00Z] sh deploy/demo-seed.sh
# Prints KEY=value lines on stdout (values are tokens and ids only; keys are
# [A-Z_] only, the pattern demo.sh accepts):
#   SUPERVISOR_TOKEN WORKER_TOKEN OFFICE_TOKEN            (the demo contract)
#   OSH_OFFICE_TOKEN LEGAL_ORG_SUPERVISOR_TOKEN PROGRAMME_SUPERVISOR_TOKEN
#   WORKER_RU_TOKEN LEGAL_WORKER_TOKEN OSH_WORKER_TOKEN OSH_LEGAL_WORKER_TOKEN
#   HR_ORG_ID LEGAL_ORG_ID BISHKEK_OFFICE_ID OSH_OFFICE_ID
# Progress goes to stderr. Exit status non-zero when a call fails.
#
# The network: two organisations, two probation offices (Bishkek, bound to
# OFFICE_CERT when given, and Osh), workers of both kinds in bishkek and osh
# speaking ky/ru with small capacities (so the demo shows capacity, least-load
# order and unassigned escalation quickly), a supervisor per organisation and
# a programme supervisor, and a token for every principal.
#
# Idempotence: demo.sh reuses the seed while its admin token still works; if
# it seeds again into a database that already holds the network (credentials
# file lost), handles and the certificate binding already exist (409): the
# script then takes the next free handle suffix and leaves the certificate
# bound to the office that already holds it, so a second run never fails.
#
# Must never: print or log client data (it creates none), or accept a URL with
# a token in it.
set -eu

BASE_URL=${1:-${BASE_URL:?BASE_URL missing}}
CA_CERT=${2:-${CA_CERT:?CA_CERT missing}}
ADMIN_TOKEN=${3:-${ADMIN_TOKEN:?ADMIN_TOKEN missing}}
OFFICE_CERT=${OFFICE_CERT:-}
EXPIRES=${EXPIRES:-$(date -u -d '+90 days' +%Y-%m-%dT%H:%M:%SZ)}

say() { echo "demo-seed: $*" >&2; }

# post PATH JSON -> sets CODE and BODY; never fails by itself.
post() {
	_out=$(curl -sS --http1.1 -X POST --cacert "$CA_CERT" --max-time 20 \
		-H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' \
		--data-binary "$2" -w '\n%{http_code}' "$BASE_URL$1") || {
		CODE=000
		BODY=
		return 0
	}
	CODE=$(printf '%s\n' "$_out" | tail -n 1)
	BODY=$(printf '%s\n' "$_out" | sed '$d')
}

# create PATH JSON_WITH_@HANDLE@ BASE_HANDLE -> id on stdout. The handle (or
# name) gets a suffix when the first choice exists already (409).
create() {
	_path=$1 _tmpl=$2 _base=$3 _n=1 _h=$3
	while :; do
		post "$_path" "$(printf '%s' "$_tmpl" | sed "s/@HANDLE@/$_h/g")"
		case $CODE in
		201)
			printf '%s' "$BODY" | jq -er .id
			return
			;;
		409)
			_n=$((_n + 1))
			[ "$_n" -le 20 ] || break
			_h=$_base-$_n
			;;
		*) break ;;
		esac
	done
	say "POST $_path answered $CODE: $(printf '%s' "$BODY" | jq -c .error 2>/dev/null)"
	return 1
}

token() { # token ROLE SUBJECT_ID -> token on stdout
	post /v1/tokens "{\"role\":\"$1\",\"subject_id\":\"$2\",\"expires_at\":\"$EXPIRES\"}"
	if [ "$CODE" != 201 ]; then
		say "token for $1 answered $CODE: $(printf '%s' "$BODY" | jq -c .error 2>/dev/null)"
		return 1
	fi
	printf '%s' "$BODY" | jq -er .token
}

worker() { # worker ORG KIND HANDLE REGIONS_JSON LANGS_JSON CAPACITY -> id
	create /v1/workers "{\"organisation_id\":\"$1\",\"kind\":\"$2\",\"handle\":\"@HANDLE@\",
		\"regions\":$4,\"languages\":$5,\"capacity\":$6}" "$3"
}

say "seeding organisations, offices, workers, supervisors and tokens"
org1=$(create /v1/organisations '{"name":"@HANDLE@"}' "Harm Reduction Network")
org2=$(create /v1/organisations '{"name":"@HANDLE@"}' "Legal Aid Collective")

# Office 1 (Bishkek) is the one the office client certificate stands for.
fp=
if [ -n "$OFFICE_CERT" ] && [ -f "$OFFICE_CERT" ]; then
	fp=$(openssl x509 -in "$OFFICE_CERT" -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1)
fi
office1=
if [ -n "$fp" ]; then
	post /v1/offices "{\"name\":\"Bishkek probation office\",\"region\":\"bishkek\",\"cert_fingerprint\":\"$fp\"}"
	if [ "$CODE" = 201 ]; then
		office1=$(printf '%s' "$BODY" | jq -er .id)
	else
		say "certificate binding answered $CODE (already bound?): office 1 created without it"
	fi
fi
[ -n "$office1" ] ||
	office1=$(create /v1/offices '{"name":"@HANDLE@","region":"bishkek"}' "Bishkek probation office")
office2=$(create /v1/offices '{"name":"@HANDLE@","region":"osh"}' "Osh probation office")

# Small capacities: a handful of referrals fills them.
w_aibek=$(worker "$org1" harm_reduction hr-aibek '["bishkek","chui"]' '["ky","ru"]' 3)
w_olga=$(worker "$org1" harm_reduction hr-olga '["bishkek"]' '["ru"]' 2)
w_dinara=$(worker "$org1" legal_support legal-dinara '["osh","osh-city"]' '["ky"]' 2)
w_timur=$(worker "$org2" legal_support legal-timur '["bishkek","chui"]' '["ky","ru"]' 3)
w_nurgul=$(worker "$org2" harm_reduction hr-nurgul '["osh","osh-city"]' '["ky","ru"]' 2)
w_aida=$(worker "$org2" legal_support legal-aida '["osh"]' '["ru"]' 2)
: "$w_dinara" "$w_aida"

sup1=$(create /v1/supervisors "{\"organisation_id\":\"$org1\",\"handle\":\"@HANDLE@\"}" sup-gulnara)
sup2=$(create /v1/supervisors "{\"organisation_id\":\"$org2\",\"handle\":\"@HANDLE@\"}" sup-bakyt)
prog=$(create /v1/supervisors '{"scope":"programme","handle":"@HANDLE@"}' programme-lead)

# Assignments, not echo "$(...)": a failed call must stop the script (set -e).
t_sup1=$(token supervisor "$sup1")
t_w=$(token worker "$w_aibek")
t_off1=$(token office "$office1")
t_off2=$(token office "$office2")
t_sup2=$(token supervisor "$sup2")
# Both organisations work on the Kyrgyz calendar (deploy/calendars/README.md).
cal=$(dirname "$0")/calendars/kyrgyzstan.json
for o in "$org1" "$org2"; do
	_out=$(curl -sS --http1.1 -X PUT --cacert "$CA_CERT" --max-time 20 -o /dev/null \
		-w '%{http_code}' -H "Authorization: Bearer $ADMIN_TOKEN" \
		-H 'Content-Type: application/json' --data-binary "@$cal" \
		"$BASE_URL/v1/organisations/$o/calendar") || _out=000
	[ "$_out" = 200 ] || { say "calendar for $o answered $_out"; exit 1; }
done

t_prog=$(token supervisor "$prog")
t_wru=$(token worker "$w_olga")
t_legal=$(token worker "$w_timur")
t_osh=$(token worker "$w_nurgul")
t_oshlegal=$(token worker "$w_dinara")

cat <<EOF
SUPERVISOR_TOKEN=$t_sup1
WORKER_TOKEN=$t_w
OFFICE_TOKEN=$t_off1
OSH_OFFICE_TOKEN=$t_off2
LEGAL_ORG_SUPERVISOR_TOKEN=$t_sup2
PROGRAMME_SUPERVISOR_TOKEN=$t_prog
WORKER_RU_TOKEN=$t_wru
LEGAL_WORKER_TOKEN=$t_legal
OSH_WORKER_TOKEN=$t_osh
OSH_LEGAL_WORKER_TOKEN=$t_oshlegal
HR_ORG_ID=$org1
LEGAL_ORG_ID=$org2
BISHKEK_OFFICE_ID=$office1
OSH_OFFICE_ID=$office2
EOF
say "done"

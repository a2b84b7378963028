#!/usr/bin/env bats
# working_due() and working_between() (sql/migrations/0040): the pure
# due-time functions of working calendars, called directly. A DST-free zone
# (Asia/Bishkek, UTC+6 all year) and a zone with DST (Europe/Berlin),
# holidays, spans over a weekend, a start with no working time left that day,
# split days, and the calendar validation that answers 422 with the field.

load ../lib/common
load sql_common

setup_file() { sql_setup_file; }
teardown_file() { refd_teardown_file; }

WEEK='{"mon":["09:00","18:00"],"tue":["09:00","18:00"],"wed":["09:00","18:00"],
       "thu":["09:00","18:00"],"fri":["09:00","18:00"],"sat":[],"sun":[]}'

# due START AMOUNT ZONE [HOLIDAYS] -> the due instant in UTC, ISO form
due() {
	sql_app "SELECT to_char(working_due('$1'::timestamptz, '$2'::interval, '$3', '$WEEK'::jsonb,
	          '${4:-{\}}'::date[]) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
}

@test "Bishkek: 4 working hours asked on Friday at 17:00 fall due on Monday at 12:00" {
	# Friday 2026-12-04 17:00 in Bishkek is 11:00Z; Monday 12:00 is 06:00Z.
	[ "$(due 2026-12-04T11:00:00Z '4 hours' Asia/Bishkek)" = 2026-12-07T06:00:00Z ]
	# Inside one day: 10:00 + 3 h = 13:00 local.
	[ "$(due 2026-12-02T04:00:00Z '3 hours' Asia/Bishkek)" = 2026-12-02T07:00:00Z ]
	# Ending exactly at closing time falls due at the closing.
	[ "$(due 2026-12-02T03:00:00Z '9 hours' Asia/Bishkek)" = 2026-12-02T12:00:00Z ]
	# A weekend start counts from Monday's opening.
	[ "$(due 2026-12-05T06:00:00Z '1 hour' Asia/Bishkek)" = 2026-12-07T04:00:00Z ]
}

@test "zero working hours left in the day: the deadline starts counting at the next opening" {
	# Wednesday 19:00 local (13:00Z): nothing left that day; Thursday 09:00 + 2 h.
	[ "$(due 2026-12-02T13:00:00Z '2 hours' Asia/Bishkek)" = 2026-12-03T05:00:00Z ]
	# Friday after closing: Monday 09:00 + 30 min.
	[ "$(due 2026-12-04T12:30:00Z '30 minutes' Asia/Bishkek)" = 2026-12-07T03:30:00Z ]
	# Zero amount outside hours: the next opening itself.
	[ "$(due 2026-12-04T13:00:00Z '0' Asia/Bishkek)" = 2026-12-07T03:00:00Z ]
}

@test "holidays are skipped, also several in a row and next to a weekend" {
	# Thursday 2026-12-31 17:00 local, 4 h: 1 h on Thursday; Friday 1 January
	# is a holiday, the weekend follows; Monday 4 January 12:00 local.
	[ "$(due 2026-12-31T11:00:00Z '4 hours' Asia/Bishkek '{2027-01-01}')" = 2027-01-04T06:00:00Z ]
	# Asked on the holiday itself (1 January 10:00 local): the first working
	# minute after it, Monday 09:00, plus 2 h.
	[ "$(due 2027-01-01T04:00:00Z '2 hours' Asia/Bishkek '{2027-01-01}')" = 2027-01-04T05:00:00Z ]
	# Monday and Tuesday off too: Wednesday.
	[ "$(due 2027-01-01T04:00:00Z '2 hours' Asia/Bishkek '{2027-01-01,2027-01-04,2027-01-05}')" = 2027-01-06T05:00:00Z ]
}

@test "Berlin across the spring DST change: local working hours, real elapsed time" {
	# Friday 2027-03-26 17:00 CET (16:00Z), 9 working hours: 1 h on Friday,
	# 8 h on Monday 29 March from 09:00 CEST: 17:00 CEST = 15:00Z (a wall
	# clock would say 2027-03-29T16:00Z).
	[ "$(due 2027-03-26T16:00:00Z '9 hours' Europe/Berlin)" = 2027-03-29T15:00:00Z ]
	# Autumn: Friday 2027-10-29 17:00 CEST (15:00Z), 2 h -> Monday 1 Nov 10:00 CET = 09:00Z.
	[ "$(due 2027-10-29T15:00:00Z '2 hours' Europe/Berlin)" = 2027-11-01T09:00:00Z ]
	# A day-long range on the short day: 00:00-24:00 on Sunday 28 March 2027 has 23 hours.
	run sql_app "SELECT extract(epoch FROM working_between('2027-03-27T23:00:00Z', '2027-03-28T22:00:00Z',
	          'Europe/Berlin', '{\"sun\":[\"00:00\",\"24:00\"]}', '{}'))::int / 3600"
	[ "$output" = 23 ]
}

@test "split days and working_between agree with working_due" {
	local split='{"mon":["09:00","13:00","14:00","18:00"]}'
	# Monday 12:00 local + 2 h: 1 h before lunch, 1 h after: 15:00 local = 09:00Z.
	run sql_app "SELECT to_char(working_due('2026-12-07T06:00:00Z', '2 hours', 'Asia/Bishkek',
	          '$split', '{}') AT TIME ZONE 'UTC', 'HH24:MI')"
	[ "$output" = 09:00 ]
	# Friday 17:00 to Monday 12:00 local is 4 working hours.
	run sql_app "SELECT working_between('2026-12-04T11:00:00Z', '2026-12-07T06:00:00Z', 'Asia/Bishkek',
	          '$WEEK', '{}')"
	[ "$output" = 04:00:00 ]
	run sql_app "SELECT working_between('2026-12-07T06:00:00Z', '2026-12-04T11:00:00Z', 'Asia/Bishkek',
	          '$WEEK', '{}')"
	[ "$output" = 00:00:00 ]
	# No working time at all: NULL (the caller falls back to wall time).
	run sql_app "SELECT working_due(now(), '1 hour', 'Asia/Bishkek', '{}', '{}') IS NULL"
	[ "$output" = t ]
}

@test "calendar validation: unknown zone, inverted range, bad time, impossible date, too many holidays" {
	local org res
	org=$(sql_mk_org cal-org)
	put() { sql_api calendar_put "$(who_admin)" "{\"id\":\"$org\",$1}"; }
	res=$(put '"timezone":"Asia/Atlantis","hours":{}')
	[ "$(jget .status "$res")" = 422 ] && [ "$(jget .body.error.field "$res")" = /timezone ]
	res=$(put '"timezone":"Asia/Bishkek","hours":{"mon":["18:00","09:00"]}')
	[ "$(jget .status "$res")" = 422 ] && [ "$(jget .body.error.field "$res")" = /hours/mon/1 ]
	res=$(put '"timezone":"Asia/Bishkek","hours":{"tue":["09:00","13:00","12:00","18:00"]}')
	[ "$(jget .status "$res")" = 422 ] && [ "$(jget .body.error.field "$res")" = /hours/tue/2 ]
	res=$(put '"timezone":"Asia/Bishkek","hours":{"wed":["9am","18:00"]}')
	[ "$(jget .status "$res")" = 422 ] && [ "$(jget .body.error.field "$res")" = /hours/wed/0 ]
	res=$(put '"timezone":"Asia/Bishkek","hours":{"thu":["09:00"]}')
	[ "$(jget .status "$res")" = 422 ] && [ "$(jget .body.error.field "$res")" = /hours/thu ]
	res=$(put '"timezone":"Asia/Bishkek","hours":{},"holidays":["2027-01-01","2027-02-30"]')
	[ "$(jget .status "$res")" = 422 ] && [ "$(jget .body.error.field "$res")" = /holidays/1 ]
	# 2028 is a leap year: its 366 days plus one more entry for it.
	res=$(put "\"timezone\":\"Asia/Bishkek\",\"hours\":{},\"holidays\":$(sql_app "SELECT json_agg(x) FROM (SELECT to_char(d, 'YYYY-MM-DD') x FROM generate_series('2028-01-01'::date, '2028-12-31', '1 day') d UNION ALL SELECT '2028-07-01') y")")
	[ "$(jget .status "$res")" = 422 ] && [ "$(jget .body.error.field "$res")" = /holidays ]
	# Nothing was stored by any of these.
	[ "$(sql "SELECT count(*) FROM org_calendars")" = 0 ]
	# A valid one is stored, and a second PUT replaces it.
	res=$(put '"timezone":"Asia/Bishkek","hours":{"mon":["09:00","18:00"]},"holidays":["2027-01-01"]')
	[ "$(jget .status "$res")" = 200 ]
	res=$(put '"timezone":"Europe/Berlin","hours":{"mon":["08:00","24:00"]},"holidays":[]')
	[ "$(jget .status "$res")" = 200 ] && [ "$(jget .body.timezone "$res")" = Europe/Berlin ]
	[ "$(sql "SELECT count(*) FROM org_calendars")" = 1 ]
	# Another organisation that does not exist: 404.
	res=$(sql_api calendar_put "$(who_admin)" '{"id":"00000000-0000-4000-8000-000000000009","timezone":"UTC","hours":{}}')
	[ "$(jget .status "$res")" = 404 ]
}

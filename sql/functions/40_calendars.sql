-- 40_calendars.sql - working calendars and working-time deadlines.
--
-- Owns (tables in migration 0040): the pure due-time functions working_due() and working_between(), deadline_due()
-- (what every new deadline's due time comes from), and the calendar and
-- policy-list API (api_calendar_put, api_deadline_policy_list; clock and
-- remind_before of api_deadline_policy_put are in 09_admin.sql).
-- Must never: let a calendar that cannot be read (unknown zone, inverted or
-- malformed range, impossible date) be stored; loop without a bound.
--
-- Why in SQL rather than C: every due time is computed inside the
-- transaction that creates the deadline (an offer, an acceptance, a resume),
-- next to the calendar row it reads, so there is no second round trip and
-- two daemons cannot disagree. PostgreSQL carries the IANA time-zone
-- database (AT TIME ZONE), so daylight-saving changes are handled by the
-- same tables the server uses everywhere else; C would need its own copy of
-- the zone rules (TZ juggling with mktime is not thread-safe nor pure).
-- The functions read nothing but their arguments (STABLE only because zone
-- rules are data), so they are tested directly (tests/integration/sql_calendar.bats).

-- The day key of a date in a calendar's hours object.
CREATE OR REPLACE FUNCTION cal_day_key(d date) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
	SELECT (ARRAY['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'])[extract(dow FROM d)::int + 1]
$$;

-- Start and end (as instants) of the working ranges of local day d.
CREATE OR REPLACE FUNCTION cal_day_ranges(d date, p_tz text, p_hours jsonb,
                               OUT r_start timestamptz, OUT r_end timestamptz)
RETURNS SETOF record LANGUAGE sql STABLE AS $$
	SELECT (d + (h->>(2 * i))::time) AT TIME ZONE p_tz,
	       CASE WHEN h->>(2 * i + 1) = '24:00' THEN (d + 1)::timestamp AT TIME ZONE p_tz
	            ELSE (d + (h->>(2 * i + 1))::time) AT TIME ZONE p_tz END
	FROM (SELECT coalesce(p_hours->cal_day_key(d), '[]') AS h) x,
	     generate_series(0, jsonb_array_length(x.h) / 2 - 1) i
	ORDER BY i
$$;

-- The instant at which p_amount of working time, counted from p_start, has
-- passed. Working time runs only inside the day's ranges, on days that are
-- not holidays (dates in the calendar's zone). A start outside working time
-- counts from the next opening; an amount that ends exactly at a closing
-- falls due at that closing. Real elapsed time is counted inside a range,
-- so a range crossing a daylight-saving change is an hour shorter or longer.
-- NULL when the calendar offers no working time within ten years.
CREATE OR REPLACE FUNCTION working_due(p_start timestamptz, p_amount interval, p_tz text, p_hours jsonb,
                            p_holidays date[]) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
DECLARE
	left_s double precision := greatest(extract(epoch FROM p_amount), 0);
	d date := (p_start AT TIME ZONE p_tz)::date;
	rg record;
	s timestamptz;
	avail double precision;
BEGIN
	FOR i IN 0 .. 3660 LOOP
		IF NOT (d = ANY (coalesce(p_holidays, '{}'))) THEN
			FOR rg IN SELECT * FROM cal_day_ranges(d, p_tz, p_hours) LOOP
				CONTINUE WHEN rg.r_end <= p_start;
				s := greatest(rg.r_start, p_start);
				avail := extract(epoch FROM rg.r_end - s);
				IF avail >= left_s THEN
					RETURN s + left_s * interval '1 second';
				END IF;
				left_s := left_s - avail;
			END LOOP;
		END IF;
		d := d + 1;
	END LOOP;
	RETURN NULL;
END $$;

-- Working time between two instants (zero when p_to <= p_from).
CREATE OR REPLACE FUNCTION working_between(p_from timestamptz, p_to timestamptz, p_tz text, p_hours jsonb,
                                p_holidays date[]) RETURNS interval
LANGUAGE plpgsql STABLE AS $$
DECLARE
	d date := (p_from AT TIME ZONE p_tz)::date;
	last date := (p_to AT TIME ZONE p_tz)::date;
	rg record;
	total double precision := 0;
BEGIN
	IF p_to <= p_from THEN
		RETURN interval '0';
	END IF;
	WHILE d <= last LOOP
		IF NOT (d = ANY (coalesce(p_holidays, '{}'))) THEN
			FOR rg IN SELECT * FROM cal_day_ranges(d, p_tz, p_hours) LOOP
				total := total + greatest(0, extract(epoch FROM
					least(rg.r_end, p_to) - greatest(rg.r_start, p_from)));
			END LOOP;
		END IF;
		d := d + 1;
	END LOOP;
	RETURN total * interval '1 second';
END $$;

-- The calendar a deadline of organisation p_org runs on, when its clock is
-- 'working' and the organisation has one.
CREATE OR REPLACE FUNCTION deadline_calendar(p_clock text, p_org uuid) RETURNS org_calendars
LANGUAGE sql STABLE AS $$
	SELECT c.* FROM org_calendars c WHERE p_clock = 'working' AND c.organisation_id = p_org
$$;

-- Move p_start on by p_amount on the deadline's clock.
CREATE OR REPLACE FUNCTION clock_add(p_clock text, p_org uuid, p_start timestamptz, p_amount interval)
RETURNS timestamptz LANGUAGE plpgsql STABLE AS $$
DECLARE
	c org_calendars := deadline_calendar(p_clock, p_org);
BEGIN
	IF c.organisation_id IS NOT NULL THEN
		RETURN coalesce(working_due(p_start, p_amount, c.timezone, c.hours, c.holidays),
		                p_start + p_amount);
	END IF;
	RETURN p_start + p_amount;
END $$;

-- Time left from p_from to p_due on the deadline's clock.
CREATE OR REPLACE FUNCTION clock_left(p_clock text, p_org uuid, p_from timestamptz, p_due timestamptz)
RETURNS interval LANGUAGE plpgsql STABLE AS $$
DECLARE
	c org_calendars := deadline_calendar(p_clock, p_org);
BEGIN
	IF c.organisation_id IS NOT NULL THEN
		RETURN working_between(p_from, p_due, c.timezone, c.hours, c.holidays);
	END IF;
	RETURN greatest(p_due - p_from, interval '0');
END $$;

-- What a new deadline of kind p_kind, starting at p_start for organisation
-- p_org, gets from its policy: the due time on the policy's clock (a
-- 'working' clock without a calendar counts wall time), the clock itself,
-- and when to remind (remind_before ahead of the due time, never before the
-- start).
CREATE OR REPLACE FUNCTION deadline_due(p_kind text, p_need text, p_urgency text, p_org uuid,
                             p_start timestamptz,
                             OUT due_at timestamptz, OUT clock text, OUT remind_at timestamptz)
LANGUAGE plpgsql STABLE AS $$
DECLARE
	pol deadline_policies := policy_for(p_need, p_urgency);
	iv interval := CASE p_kind WHEN 'accept' THEN pol.accept_within
	                           WHEN 'first_contact' THEN pol.first_contact_within
	                           ELSE pol.consultation_within END;
BEGIN
	clock := CASE WHEN (deadline_calendar(pol.clock, p_org)).organisation_id IS NOT NULL
	              THEN 'working' ELSE 'wall' END;
	due_at := clock_add(clock, p_org, p_start, iv);
	remind_at := CASE WHEN pol.remind_before IS NOT NULL
	                  THEN greatest(p_start, due_at - pol.remind_before) END;
END $$;

-- Calendar API -------------------------------------------------------------------

-- Validation the C side cannot do (zone names, ranges, real dates): NULL
-- when valid, else the 422 error.
CREATE OR REPLACE FUNCTION calendar_check(p_args jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
	day text;
	h jsonb;
	i integer;
	prev text;
	t text;
	dt text;
	dd date;
	per_year jsonb := '{}';
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = p_args->>'timezone') THEN
		RETURN api_error(422, 'invalid_value', 'not an IANA time zone', '/timezone');
	END IF;
	FOR day, h IN SELECT * FROM jsonb_each(coalesce(p_args->'hours', '{}')) LOOP
		IF day NOT IN ('mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun') THEN
			RETURN api_error(422, 'invalid_value', 'days are mon..sun', '/hours');
		END IF;
		IF jsonb_typeof(h) <> 'array' OR jsonb_array_length(h) % 2 <> 0 THEN
			RETURN api_error(422, 'invalid_value', 'a day is a list of HH:MM start/end pairs',
			                 '/hours/' || day);
		END IF;
		prev := NULL;
		FOR i IN 0 .. jsonb_array_length(h) - 1 LOOP
			t := h->>i;
			IF t IS NULL OR t !~ '^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$'
			   OR (t = '24:00' AND i % 2 = 0) THEN
				RETURN api_error(422, 'invalid_value', 'not a time HH:MM',
				                 '/hours/' || day || '/' || i);
			END IF;
			-- Strictly ascending: every start before its end, and ranges
			-- in order without overlap ("HH:MM" sorts as text).
			IF prev IS NOT NULL AND (t < prev OR (t = prev AND i % 2 = 1)) THEN
				RETURN api_error(422, 'invalid_value',
				                 'each range starts before it ends, ranges in order',
				                 '/hours/' || day || '/' || i);
			END IF;
			prev := t;
		END LOOP;
	END LOOP;
	FOR i IN 0 .. coalesce(jsonb_array_length(p_args->'holidays'), 0) - 1 LOOP
		dt := p_args->'holidays'->>i;
		BEGIN
			IF dt IS NULL OR dt !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN
				RAISE invalid_datetime_format;
			END IF;
			dd := to_date(dt, 'YYYY-MM-DD');
			IF to_char(dd, 'YYYY-MM-DD') <> dt THEN
				RAISE invalid_datetime_format;
			END IF;
		EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow THEN
			RETURN api_error(422, 'invalid_value', 'not a real date YYYY-MM-DD', '/holidays/' || i);
		END;
		per_year := jsonb_set(per_year, ARRAY[left(dt, 4)],
		                      to_jsonb(coalesce((per_year->>left(dt, 4))::int, 0) + 1));
		IF (per_year->>left(dt, 4))::int > 366 THEN
			RETURN api_error(422, 'invalid_value', 'at most 366 holidays in a year', '/holidays');
		END IF;
	END LOOP;
	RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION calendar_json(c org_calendars) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT jsonb_build_object('organisation_id', c.organisation_id, 'timezone', c.timezone,
		'hours', c.hours,
		'holidays', coalesce((SELECT jsonb_agg(to_char(h, 'YYYY-MM-DD') ORDER BY h)
		                      FROM unnest(c.holidays) h), '[]'),
		'updated_at', ts(c.updated_at))
$$;

CREATE OR REPLACE FUNCTION api_calendar_put(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	err jsonb := admin_check(p_who, p_request_id, 'calendar.put');
	c org_calendars;
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	PERFORM 1 FROM organisations WHERE id = try_uuid(p_args->>'id');
	IF NOT FOUND THEN
		RETURN api_not_found(p_who, p_request_id, 'calendar.put', 'organisation', p_args->>'id');
	END IF;
	err := calendar_check(p_args);
	IF err IS NOT NULL THEN RETURN err; END IF;
	INSERT INTO org_calendars (organisation_id, timezone, hours, holidays, updated_at)
	VALUES ((p_args->>'id')::uuid, p_args->>'timezone', coalesce(p_args->'hours', '{}'),
	        coalesce(ARRAY(SELECT DISTINCT x::date FROM jsonb_array_elements_text(p_args->'holidays') x),
	                 '{}'), now())
	ON CONFLICT (organisation_id) DO UPDATE
		SET timezone = EXCLUDED.timezone, hours = EXCLUDED.hours,
		    holidays = EXCLUDED.holidays, updated_at = now()
	RETURNING * INTO c;
	RETURN api_done(p_who, p_request_id, 'calendar.put', 'organisation', c.organisation_id::text,
	                200, calendar_json(c));
END $$;

-- Deadline policies ----------------------------------------------------------------

CREATE OR REPLACE FUNCTION api_deadline_policy_list(p_who jsonb, p_request_id text, p_args jsonb)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
	err jsonb := api_check(p_who, p_request_id, 'deadline_policy.list', ARRAY['admin', 'supervisor']);
BEGIN
	IF err IS NOT NULL THEN RETURN err; END IF;
	RETURN api_done(p_who, p_request_id, 'deadline_policy.list', 'deadline_policy', NULL, 200,
		jsonb_build_object('items', (SELECT jsonb_agg(policy_json(p) ORDER BY p.need, p.urgency)
		                             FROM deadline_policies p),
		                   'next', NULL));
END $$;


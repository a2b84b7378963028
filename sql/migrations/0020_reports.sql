-- 0020_reports.sql - the index the follow-up report reads deadlines through
-- (sql/functions/20_reports.sql).

CREATE INDEX deadlines_starts ON deadlines (starts_at);

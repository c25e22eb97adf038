-- SPDX-License-Identifier: Apache-2.0
-- 009: statistics for tables that grew fast (issue 11).
--
-- The module's sessions are long-lived and run prepared statements: after
-- a few executions PostgreSQL keeps one generic plan per statement, made
-- with the statistics of that moment, until those statistics change. On a
-- fresh install the signup tables are empty when the first sessions plan,
-- so the generic plans scan them whole; under a flood of signups the
-- tables grow by hundreds of rows a second, every signup reads all of
-- them (measured: 23 million rows read from the mail log by 4,000 signups
-- in 13 s, 240 signups/s where the same tables with fresh statistics give
-- 670), and autovacuum takes up to a minute to notice.
--
-- hydra_signup_analyze_grown() analyzes each of the module's tables that
-- holds more than twice the rows it held when last analyzed (and at least
-- 1,000), which makes every session plan its statements again. The reaper
-- calls it on every run, so the plans follow a fast-growing table within
-- seconds; a table that stops doubling is left to autovacuum, and tables
-- that are only updated (the per-minute mail counts) never qualify. It
-- returns the tables it analyzed with their live and last analyzed row
-- counts. It leaves out tables the session's user does not own, skips a
-- table another process holds (SKIP_LOCKED: it never waits for, nor
-- cancels, an autovacuum), and does nothing while another server's reaper
-- is at it (an advisory lock).
CREATE OR REPLACE FUNCTION hydra_signup_analyze_grown()
RETURNS TABLE (table_name text, live_rows bigint, analyzed_rows bigint)
LANGUAGE plpgsql
AS $$
DECLARE
    v record;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtextextended(
               'hydra_signup_analyze_grown', 0)) THEN
        RETURN;
    END IF;
    FOR v IN
        SELECT s.relid::regclass AS rel, s.n_live_tup AS live,
               greatest(c.reltuples, 0)::bigint AS before
          FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
         WHERE s.relid IN (to_regclass('customers'),
                           to_regclass('hydra_signup_codes'),
                           to_regclass('hydra_signup_mail_log'),
                           to_regclass('hydra_signup_tenant_mails'),
                           to_regclass('hydra_signup_decoys'),
                           to_regclass('hydra_signup_labels'),
                           to_regclass('hydra_signup_refresh_tokens'))
           AND s.n_live_tup > greatest(1000, 2 * c.reltuples)
           AND pg_has_role(c.relowner, 'USAGE')
    LOOP
        EXECUTE format('ANALYZE (SKIP_LOCKED) %s', v.rel);
        table_name := v.rel::text;
        live_rows := v.live;
        analyzed_rows := v.before;
        RETURN NEXT;
    END LOOP;
END
$$;

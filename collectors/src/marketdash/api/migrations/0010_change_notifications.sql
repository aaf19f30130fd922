-- Every table the API serves from memory announces its changes: NOTIFY <table>_changed, sent at commit by
-- a statement-level trigger whoever writes (the API, its CLI, psql, a cascade, a restore). The market
-- feeder follows watchlists_changed and the alert engine alert_rules_changed, as they did before this
-- one function replaced the two that 0003 and 0005 defined for them.
-- Replacing a trigger locks its table against every reader: give up (the deploy fails, and is re-run)
-- rather than queue every query behind a long one.
SET LOCAL lock_timeout = '30s';

CREATE OR REPLACE FUNCTION notify_table_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_NAME || '_changed', TG_OP);
    RETURN NULL;
END
$$;

DO $$
DECLARE
    announced text;
BEGIN
    FOREACH announced IN ARRAY
        ARRAY['users', 'assets', 'watchlists', 'user_layouts', 'alert_rules', 'portfolio_positions']
    LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %I', announced || '_changed', announced);
        EXECUTE format(
            'CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I'
            ' FOR EACH STATEMENT EXECUTE FUNCTION notify_table_changed()',
            announced || '_changed', announced);
    END LOOP;
END
$$;

DROP FUNCTION IF EXISTS notify_watchlists_changed();
DROP FUNCTION IF EXISTS notify_alert_rules_changed();

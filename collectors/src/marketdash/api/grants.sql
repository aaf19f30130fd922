-- What the other logins may do with the API's tables, made so by every `migrate`, after the migrations
-- (the logins are created by the deployment before the API starts; one that does not exist is skipped).
-- Each login gets what its service reads and writes, and no more; a migration that adds a table one of
-- them needs adds its grant here.
DO $grants$
DECLARE
    nsp CONSTANT name := current_schema();
BEGIN
    -- Grafana's read-only login: what the dashboards query. Any Grafana editor can run SQL as this login,
    -- so never password hashes, alert rules (their targets are webhook URLs, which carry secrets), or the
    -- targets and delivery errors of alert events.
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'grafana_reader') THEN
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM grafana_reader', nsp);
        GRANT SELECT ON watchlists, assets, portfolio_positions TO grafana_reader;
        GRANT SELECT (id, username) ON users TO grafana_reader;
        GRANT SELECT (id, rule_id, user_id, asset, condition, threshold, value, channel, status, message,
                      triggered_at, delivered_at)
            ON alert_events TO grafana_reader;
    END IF;
    -- The market feeder's login: which symbols the active watchlists name, not whose they are.
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'marketdash_feeder') THEN
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM marketdash_feeder', nsp);
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO marketdash_feeder', nsp);
        GRANT SELECT (assets, active) ON watchlists TO marketdash_feeder;
    END IF;
    -- The alert engine's login: it reads the rules, writes the events and its state; no users.
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'marketdash_alerts') THEN
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM marketdash_alerts', nsp);
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO marketdash_alerts', nsp);
        GRANT SELECT ON alert_rules TO marketdash_alerts;
        GRANT SELECT, INSERT, UPDATE ON alert_events, alert_rule_state TO marketdash_alerts;
        GRANT USAGE ON SEQUENCE alert_events_id_seq TO marketdash_alerts;
    END IF;
END
$grants$;

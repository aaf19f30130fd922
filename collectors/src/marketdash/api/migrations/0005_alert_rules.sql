-- User alert rules (R1.2, R4.3), evaluated by the alert engine on live prices.
--   above / below: price crosses threshold; pct_change: |change over window_minutes| >= threshold percent;
--   volume_spike: volume over window_minutes >= threshold times its usual level.
CREATE TABLE IF NOT EXISTS alert_rules (
    id               serial PRIMARY KEY,
    user_id          int          NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    asset            varchar(50)  NOT NULL,
    condition        varchar(20)  NOT NULL CHECK (condition IN ('above', 'below', 'pct_change', 'volume_spike')),
    threshold        numeric      NOT NULL,
    window_minutes   int          NOT NULL DEFAULT 60 CHECK (window_minutes BETWEEN 1 AND 10080),
    channel          varchar(20)  NOT NULL CHECK (channel IN ('telegram', 'email', 'webhook')),
    -- Telegram chat id, e-mail address or webhook URL; NULL means the channel's default from settings.
    target           varchar(500),
    cooldown_seconds int          NOT NULL DEFAULT 900 CHECK (cooldown_seconds BETWEEN 0 AND 604800),
    active           boolean      NOT NULL DEFAULT true,
    created_at       timestamptz  NOT NULL DEFAULT now(),
    updated_at       timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS alert_rules_user_id_idx ON alert_rules (user_id);
CREATE INDEX IF NOT EXISTS alert_rules_active_asset_idx ON alert_rules (asset) WHERE active;

-- The alert engine reloads its rules when they change, as the feeder does for watchlists.
CREATE OR REPLACE FUNCTION notify_alert_rules_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('alert_rules_changed', TG_OP);
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS alert_rules_changed ON alert_rules;
CREATE TRIGGER alert_rules_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON alert_rules
    FOR EACH STATEMENT EXECUTE FUNCTION notify_alert_rules_changed();

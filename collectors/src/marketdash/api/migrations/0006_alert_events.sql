-- What fired, for the alerts and events panel (R3.4): written by the alert engine, read by Grafana and the API.
-- A copy of the rule's condition is kept so an event still reads right after its rule is edited or deleted.
CREATE TABLE IF NOT EXISTS alert_events (
    id           bigserial PRIMARY KEY,
    rule_id      int          REFERENCES alert_rules (id) ON DELETE SET NULL,
    user_id      int          NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    asset        varchar(50)  NOT NULL,
    condition    varchar(20)  NOT NULL,
    threshold    numeric      NOT NULL,
    value        numeric      NOT NULL,
    channel      varchar(20)  NOT NULL,
    status       varchar(16)  NOT NULL DEFAULT 'triggered'
                 CHECK (status IN ('triggered', 'sent', 'failed', 'suppressed')),
    message      text         NOT NULL DEFAULT '',
    triggered_at timestamptz  NOT NULL DEFAULT now(),
    delivered_at timestamptz
);
CREATE INDEX IF NOT EXISTS alert_events_triggered_at_idx ON alert_events (triggered_at DESC);
CREATE INDEX IF NOT EXISTS alert_events_user_triggered_idx ON alert_events (user_id, triggered_at DESC);

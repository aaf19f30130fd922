-- A rule's own re-arm margin, in percent of its threshold; NULL: the engine's default (docs/alerts.md).
ALTER TABLE alert_rules
    ADD COLUMN IF NOT EXISTS hysteresis_pct numeric CHECK (hysteresis_pct >= 0 AND hysteresis_pct <= 50);

-- The alert engine's memory (docs/alerts.md). One row per rule that has fired or re-armed: whether it is
-- armed, when it last fired, and for which version of the rule (an edit of what it tests starts it afresh).
CREATE TABLE IF NOT EXISTS alert_rule_state (
    rule_id       int         PRIMARY KEY REFERENCES alert_rules (id) ON DELETE CASCADE,
    rule_version  text        NOT NULL,
    armed         boolean     NOT NULL,
    last_fired_at timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Delivery bookkeeping: an event is 'triggered' until its channel took it ('sent') or the engine gave up
-- ('failed'); 'suppressed' events passed the owner's hourly limit and are only recorded. The target is the
-- one the rule named when it fired (NULL: the channel's default); observed_at is the time of the market
-- data that crossed the threshold.
ALTER TABLE alert_events
    ADD COLUMN IF NOT EXISTS target          varchar(500),
    ADD COLUMN IF NOT EXISTS observed_at     timestamptz,
    ADD COLUMN IF NOT EXISTS attempts        int NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS last_error      text,
    ADD COLUMN IF NOT EXISTS next_attempt_at timestamptz;
CREATE INDEX IF NOT EXISTS alert_events_pending_idx ON alert_events (next_attempt_at, id)
    WHERE status = 'triggered';

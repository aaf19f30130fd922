-- Watchlists as in the roadmap (R1.2) plus `active`: the market feeder collects
-- SELECT DISTINCT jsonb_array_elements_text(assets) FROM watchlists WHERE active
CREATE TABLE IF NOT EXISTS watchlists (
    id         serial PRIMARY KEY,
    user_id    int          NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       varchar(100) NOT NULL,
    assets     jsonb        NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(assets) = 'array'),
    active     boolean      NOT NULL DEFAULT true,
    created_at timestamptz  NOT NULL DEFAULT now(),
    updated_at timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS watchlists_user_id_idx ON watchlists (user_id);

-- A trigger rather than the API sending NOTIFY: whoever writes (API, psql, a restore), the feeder follows.
-- NOTIFY is delivered at commit, so a rolled-back change wakes nobody.
CREATE OR REPLACE FUNCTION notify_watchlists_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('watchlists_changed', TG_OP);
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS watchlists_changed ON watchlists;
CREATE TRIGGER watchlists_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON watchlists
    FOR EACH STATEMENT EXECUTE FUNCTION notify_watchlists_changed();

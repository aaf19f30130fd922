-- Per-user panel configuration (R1.2).
CREATE TABLE IF NOT EXISTS user_layouts (
    id            serial PRIMARY KEY,
    user_id       int          NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    layout_name   varchar(100) NOT NULL,
    panels_config jsonb        NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(panels_config) = 'object'),
    is_default    boolean      NOT NULL DEFAULT false,
    created_at    timestamptz  NOT NULL DEFAULT now(),
    updated_at    timestamptz  NOT NULL DEFAULT now(),
    UNIQUE (user_id, layout_name)
);
-- At most one default layout per user.
CREATE UNIQUE INDEX IF NOT EXISTS user_layouts_one_default_idx ON user_layouts (user_id) WHERE is_default;

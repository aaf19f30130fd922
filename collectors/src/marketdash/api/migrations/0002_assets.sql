-- The asset catalogue (marketdash/core/catalogue.json), copied here by the migrate command so that search
-- and Grafana's SQL variables can read it.
CREATE TABLE IF NOT EXISTS assets (
    symbol      varchar(50)  PRIMARY KEY,
    name        varchar(200) NOT NULL,
    asset_class varchar(16)  NOT NULL CHECK (asset_class IN ('crypto', 'equity', 'index', 'fx', 'commodity')),
    aliases     jsonb        NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(aliases) = 'array'),
    sources     jsonb        NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(sources) = 'object')
);

-- Holdings for the Portfolio dashboard (R3.6): P&L = quantity * (last price - avg_price).
CREATE TABLE IF NOT EXISTS portfolio_positions (
    id         serial PRIMARY KEY,
    user_id    int          NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    asset      varchar(50)  NOT NULL,
    quantity   numeric      NOT NULL,
    avg_price  numeric      NOT NULL CHECK (avg_price >= 0),
    currency   varchar(3)   NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    opened_at  timestamptz  NOT NULL DEFAULT now(),
    note       varchar(500) NOT NULL DEFAULT '',
    created_at timestamptz  NOT NULL DEFAULT now(),
    updated_at timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS portfolio_positions_user_id_idx ON portfolio_positions (user_id);

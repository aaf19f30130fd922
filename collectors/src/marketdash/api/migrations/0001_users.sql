-- Team members: created from the Ansible inventory (`python -m marketdash.api ensure-user`) or by an admin.
CREATE TABLE IF NOT EXISTS users (
    id            serial PRIMARY KEY,
    username      varchar(64)  NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    password_hash text         NOT NULL,
    role          varchar(16)  NOT NULL DEFAULT 'member' CHECK (role IN ('admin', 'member')),
    created_at    timestamptz  NOT NULL DEFAULT now(),
    updated_at    timestamptz  NOT NULL DEFAULT now()
);

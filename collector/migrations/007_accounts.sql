-- Portal accounts (portal/accounts.py). Users come from two places: the config file
-- (source 'config', brought in at every start so the file stays authoritative for
-- them) and `linkwatch users add` (source 'cli'). Passwords are argon2id PHC strings;
-- nothing here ever holds a password, a session id or an API token in clear: sessions
-- and tokens are stored as SHA-256 digests of the random values the clients hold.
CREATE TABLE portal_users (
    name          text        PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$'),
    role          text        NOT NULL CHECK (role IN ('customer', 'ops', 'billing', 'admin')),
    customer_id   text        NULL,
    password_hash text        NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    disabled      boolean     NOT NULL DEFAULT false,
    source        text        NOT NULL CHECK (source IN ('config', 'cli')),
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    CHECK ((role = 'customer') = (customer_id IS NOT NULL))
);

-- A signed-in browser. Deleted at sign-out; expired ones are purged.
CREATE TABLE portal_sessions (
    id_digest    bytea       PRIMARY KEY,
    user_name    text        NOT NULL REFERENCES portal_users (name) ON DELETE CASCADE,
    csrf_token   text        NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    remote       text        NULL,
    CHECK (expires_at > created_at)
);
CREATE INDEX portal_sessions_user_idx ON portal_sessions (user_name);
CREATE INDEX portal_sessions_expiry_idx ON portal_sessions (expires_at);

-- API tokens for /api/v1: made and revoked by their user; shown once, kept as a digest.
CREATE TABLE api_tokens (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_name    text        NOT NULL REFERENCES portal_users (name) ON DELETE CASCADE,
    label        text        NOT NULL CHECK (label <> ''),
    digest       bytea       NOT NULL UNIQUE,
    prefix       text        NOT NULL,  -- the first characters, so a user can tell tokens apart
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NULL,
    last_used_at timestamptz NULL,
    revoked_at   timestamptz NULL
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_name);

-- Failed sign-ins, counted per account and per client address for throttling.
CREATE TABLE login_failures (
    at      timestamptz NOT NULL,
    account text        NOT NULL,  -- case-folded, as typed: unknown names count too
    remote  text        NOT NULL
);
CREATE INDEX login_failures_account_idx ON login_failures (account, at);
CREATE INDEX login_failures_remote_idx ON login_failures (remote, at);

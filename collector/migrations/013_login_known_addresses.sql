-- Addresses each portal account signed in from (portal/auth.py): a right password from
-- one of them is taken at once while others guess at the account from elsewhere. An
-- IPv6 address is kept as its /64. Only the most recent few of an account are kept, and
-- a new password or disabling the account (`linkwatch users`) forgets them.
CREATE TABLE login_known_addresses (
    user_name text        NOT NULL REFERENCES portal_users (name) ON DELETE CASCADE,
    remote    text        NOT NULL,
    last_at   timestamptz NOT NULL,
    PRIMARY KEY (user_name, remote)
);

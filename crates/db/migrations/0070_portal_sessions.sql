-- The web portal (issue 12). A sign-in link is minted by CreatePortalLink for one portal and
-- opened once; opening it starts a browser session. Only SHA-256 hashes of the link and session
-- tokens are stored, so a database dump signs nobody in.
CREATE TABLE portal_sign_in_links (
    token_hash  BYTEA PRIMARY KEY,
    portal_id   TEXT NOT NULL REFERENCES portals (id) ON DELETE CASCADE,
    -- A read-only sign-in may look but change nothing.
    read_only   BOOLEAN NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    -- Set when the link is opened: a link signs in once.
    used_at     TIMESTAMPTZ
);

CREATE TABLE portal_sessions (
    token_hash  BYTEA PRIMARY KEY,
    portal_id   TEXT NOT NULL REFERENCES portals (id) ON DELETE CASCADE,
    read_only   BOOLEAN NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL
);

-- Expired rows are deleted by expiry when a new link is minted.
CREATE INDEX portal_sign_in_links_expiry ON portal_sign_in_links (expires_at);
CREATE INDEX portal_sessions_expiry ON portal_sessions (expires_at);

COMMENT ON TABLE portal_sign_in_links IS
    'Single-use, short-lived portal sign-in links (SHA-256 of the token only)';
COMMENT ON TABLE portal_sessions IS 'Web portal browser sessions (SHA-256 of the cookie only)';

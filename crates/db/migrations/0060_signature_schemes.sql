-- Standard Webhooks v1a (Ed25519) signing keys beside the v1 (HMAC) secrets (issue 14). A row of
-- `subscription_secrets` is either a `whsec_` secret (scheme v1) or a `whsk_` signing key
-- (scheme v1a), sealed alike in `secret`; a subscription's scheme is its current row's. The
-- public key of a v1a row is stored in the clear: it is what the customer verifies with, and the
-- API shows it without opening any sealed value.
--
-- Rollback: a previous release reads every row as a `whsec_` secret, so a v1a subscription's
-- requests would carry a wrong `v1,` signature until this release runs again; v1 rows (the
-- default) are unchanged.
ALTER TABLE subscription_secrets
    ADD COLUMN scheme TEXT NOT NULL DEFAULT 'v1' CHECK (scheme IN ('v1', 'v1a')),
    -- `whpk_` + base64 of the 32-byte Ed25519 public key; NULL for a v1 secret.
    ADD COLUMN public_key TEXT;

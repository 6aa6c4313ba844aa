-- A subscription can ask not to receive the W3C `traceparent` header (some receivers log or
-- reject unknown headers). Off by default: requests carry it unless the deployment turns it off.
ALTER TABLE subscriptions ADD COLUMN omit_traceparent BOOLEAN NOT NULL DEFAULT FALSE;

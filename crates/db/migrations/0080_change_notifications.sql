-- Change notifications (issue 13): every write that changes what the router or the sender caches
-- announces itself with NOTIFY, so that their caches drop the entry at once and can otherwise
-- live for minutes (synap_db::changes listens). A notification is sent when the transaction
-- commits, so a cache that reloads on it reads the new rows.
--
--   synap_portal_changed        payload: a portal id (the router caches per portal: plan,
--                               features and enabled subscriptions)
--   synap_subscription_changed  payload: a subscription id (the sender caches per subscription:
--                               URL, credentials, signing secrets, delivery options)
--
-- Ids are at most 128 bytes (synap_contract::ids), far below NOTIFY's 8,000-byte payload limit.
-- Triggers only add behaviour: a previous release's binaries write the same rows and ignore the
-- notifications.

CREATE OR REPLACE FUNCTION synap_notify_portal_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('synap_portal_changed', OLD.id);
    ELSE
        PERFORM pg_notify('synap_portal_changed', NEW.id);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER portals_notify_change
    AFTER INSERT OR UPDATE OR DELETE ON portals
    FOR EACH ROW EXECUTE FUNCTION synap_notify_portal_change();

-- A subscription row feeds both caches. The sender's own bookkeeping (failing_since, written in
-- batches after deliveries) changes nothing either cache holds and is left silent: announcing it
-- would reload targets on every batch. Every other column counts, including ones added later.
CREATE OR REPLACE FUNCTION synap_notify_subscription_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND (to_jsonb(OLD) - 'failing_since') = (to_jsonb(NEW) - 'failing_since') THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pg_notify('synap_subscription_changed', OLD.id);
        PERFORM pg_notify('synap_portal_changed', OLD.portal_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM pg_notify('synap_subscription_changed', NEW.id);
        PERFORM pg_notify('synap_portal_changed', NEW.portal_id);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER subscriptions_notify_change
    AFTER INSERT OR UPDATE OR DELETE ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION synap_notify_subscription_change();

-- For any table that holds a subscription's data in rows of its own (a `subscription_id`
-- column): signing secrets here; a later table the sender caches attaches the same function.
CREATE OR REPLACE FUNCTION synap_notify_subscription_part_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('synap_subscription_changed', OLD.subscription_id);
    ELSE
        PERFORM pg_notify('synap_subscription_changed', NEW.subscription_id);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER subscription_secrets_notify_change
    AFTER INSERT OR UPDATE OR DELETE ON subscription_secrets
    FOR EACH ROW EXECUTE FUNCTION synap_notify_subscription_part_change();

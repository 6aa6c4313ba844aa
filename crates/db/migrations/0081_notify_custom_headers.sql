-- Custom headers (migration 61) are part of what the sender caches per subscription: a change to
-- them is announced like a change to its signing secrets (migration 80), so that it applies at
-- once rather than when the cache entry expires.
CREATE TRIGGER subscription_headers_notify_change
    AFTER INSERT OR UPDATE OR DELETE ON subscription_headers
    FOR EACH ROW EXECUTE FUNCTION synap_notify_subscription_part_change();

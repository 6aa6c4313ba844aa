-- A subscription may carry a filter: a CEL expression over the event (crates/filter), checked by
-- control at create and update, compiled by the router when it loads the portal's routes. NULL:
-- no filter, every event of the subscription's types. Nullable, so an older binary's insert
-- still succeeds (an older router ignores the filter: see the README, Upgrade and rollback).
ALTER TABLE subscriptions ADD COLUMN filter TEXT;

//! Subscriptions: create (idempotent), list (paginated), update, delete, pause, resume, and
//! signing-secret rotation. Every call is scoped to the caller's portal.

use chrono::{DateTime, Utc};
use synap_contract::{EventType, TypePattern};
use synap_db::NewSubscription;
use synap_db::delivery_state::DeliveryOptions;
use synap_db::secrets::Scheme;
use synap_db::subscriptions::{Changes, Creation, Cursor, Filter};
use synap_proto::control::v1 as api;
use tonic::Status;

use crate::auth::Caller;
use crate::errors::{db, invalid, not_found, precondition};
use crate::service::{ControlApi, require_features, require_patterns, require_webhooks};
use crate::{convert, page, validate};

fn codes(patterns: &[TypePattern]) -> Vec<String> {
    patterns.iter().map(|p| p.text()).collect()
}

/// A filter as the request carries it: empty means none.
fn filter_text(value: &str) -> Option<&str> {
    (!value.is_empty()).then_some(value)
}

/// A change to an optional delivery option: `None` leaves it, `Some(None)` clears it.
fn option_change(
    field: &str,
    value: Option<u32>,
    clear: bool,
    max: u32,
    unit: &str,
) -> Result<Option<Option<u32>>, Status> {
    match (value, clear) {
        (Some(_), true) => {
            Err(invalid(&format!("clear_{field}"), format!("cannot be combined with {field}")))
        }
        (Some(v), false) => Ok(Some(validate::option_in_range(field, Some(v), max, unit)?)),
        (None, true) => Ok(Some(None)),
        (None, false) => Ok(None),
    }
}

impl ControlApi {
    pub(crate) async fn create_subscription(
        &self,
        caller: &Caller,
        req: api::CreateSubscriptionRequest,
    ) -> Result<api::CreateSubscriptionResponse, Status> {
        let url = validate::url("url", &req.url, self.allow_http_urls, &self.outbound).await?;
        let options = DeliveryOptions {
            ordered: req.ordered,
            max_in_flight: validate::option_in_range(
                "max_in_flight",
                req.max_in_flight,
                validate::MAX_IN_FLIGHT,
                "",
            )?,
            rate_limit_per_sec: validate::option_in_range(
                "rate_limit_per_sec",
                req.rate_limit_per_sec,
                validate::MAX_RATE_LIMIT,
                " per second",
            )?,
            timeout_ms: validate::option_in_range(
                "timeout_ms",
                req.timeout_ms,
                validate::MAX_TIMEOUT_MS,
                " ms",
            )?,
            omit_traceparent: req.omit_traceparent,
        };
        let types = validate::event_types("event_types", &req.event_types)?;
        if let Some(source) = filter_text(&req.filter) {
            validate::filter("filter", source, &validate::covered(&types)).await?;
        }
        validate::description("description", &req.description)?;
        let request_id = validate::request_id("request_id", &req.request_id)?;
        let basic_auth = req.basic_auth.map(|a| validate::basic_auth("basic_auth", a)).transpose()?;
        let signature_scheme =
            validate::signature_scheme("signature_scheme", req.signature_scheme)?.unwrap_or_default();
        let headers = validate::headers("headers", req.headers)?;
        let portal = self.portal_for(caller, "portal_id", &req.portal_id).await?;
        require_webhooks(&portal)?;
        require_patterns(&portal, "event_types", &types)?;

        let new = NewSubscription {
            portal_id: portal.id,
            url: url.to_string(),
            event_types: codes(&types),
            filter: filter_text(&req.filter).map(str::to_owned),
            description: req.description,
            enabled: req.enabled.unwrap_or(true),
            basic_auth,
            request_id,
            signature_scheme,
            headers,
        };
        let window = chrono::Duration::from_std(self.request_id_ttl).unwrap_or(chrono::Duration::days(1));
        let mut created = match synap_db::subscriptions::create(&self.pool, &self.secrets, &new, window)
            .await
            .map_err(db)?
        {
            Creation::Created(created) => *created,
            Creation::Expired { subscription_id, created_at } => {
                tracing::info!(%subscription_id, "create replayed after its request id expired");
                return Err(Status::already_exists(format!(
                    "request_id: used by subscription {subscription_id} at {}, longer ago than the {} s \
                     replay window; nothing was created and its signing secret is not returned again",
                    created_at.to_rfc3339(),
                    self.request_id_ttl.as_secs()
                )));
            }
        };
        // A replay returns the subscription as it is; only a new one takes the request's options.
        if !created.replayed && options != created.subscription.options {
            synap_db::delivery_state::set_options(&self.pool, &created.subscription.id, &options)
                .await
                .map_err(db)?;
            created.subscription.options = options;
        }
        let sub = &created.subscription;
        if created.replayed {
            tracing::info!(subscription_id = %sub.id, portal_id = %sub.portal_id, "create replayed for a known request id");
        } else {
            tracing::info!(subscription_id = %sub.id, portal_id = %sub.portal_id, "subscription created");
        }
        Ok(api::CreateSubscriptionResponse {
            subscription: Some(self.shown_one(created.subscription).await?),
            signing_secret: created.signing_secret.unwrap_or_default(),
        })
    }

    pub(crate) async fn list_subscriptions(
        &self,
        caller: &Caller,
        req: api::ListSubscriptionsRequest,
    ) -> Result<api::ListSubscriptionsResponse, Status> {
        let size = page::size(req.page_size)?;
        let portal_id = match (caller, req.portal_id.as_str()) {
            (Caller::Admin, "") => None,
            (_, id) => Some(self.portal_for(caller, "portal_id", id).await?.id),
        };
        let event_type = match req.event_type.as_str() {
            "" => None,
            text => Some(TypePattern::parse(text).map_err(|e| invalid("event_type", e.to_string()))?.text()),
        };
        let state = api::SubscriptionState::try_from(req.state)
            .map_err(|_| invalid("state", format!("unknown state {}", req.state)))?;
        let filter = Filter { portal_id, event_type, state: convert::state_from_api(state) };
        // The token is bound to the filters, so a changed query cannot reuse it.
        let query = format!(
            "subscriptions {} {} {}",
            filter.portal_id.as_deref().unwrap_or("*"),
            filter.event_type.as_deref().unwrap_or("*"),
            req.state
        );
        let after = match page::position(&req.page_token, &query, 2)? {
            Some(p) => {
                let micros: i64 = p[0].parse().map_err(|_| invalid("page_token", "is corrupt"))?;
                let created_at = DateTime::<Utc>::from_timestamp_micros(micros)
                    .ok_or_else(|| invalid("page_token", "is corrupt"))?;
                Some(Cursor { created_at, id: p[1].clone() })
            }
            None => None,
        };
        let (subs, next) =
            synap_db::subscriptions::list(&self.pool, &filter, after.as_ref(), size).await.map_err(db)?;
        Ok(api::ListSubscriptionsResponse {
            subscriptions: self.shown(subs).await?,
            next_page_token: next
                .map(|c| page::token(&query, &[&c.created_at.timestamp_micros().to_string(), &c.id]))
                .unwrap_or_default(),
        })
    }

    pub(crate) async fn update_subscription(
        &self,
        caller: &Caller,
        req: api::UpdateSubscriptionRequest,
    ) -> Result<api::Subscription, Status> {
        let url = match &req.url {
            Some(u) => Some(validate::url("url", u, self.allow_http_urls, &self.outbound).await?),
            None => None,
        };
        let max_in_flight = option_change(
            "max_in_flight",
            req.max_in_flight,
            req.clear_max_in_flight,
            validate::MAX_IN_FLIGHT,
            "",
        )?;
        let rate_limit_per_sec = option_change(
            "rate_limit_per_sec",
            req.rate_limit_per_sec,
            req.clear_rate_limit_per_sec,
            validate::MAX_RATE_LIMIT,
            " per second",
        )?;
        let timeout_ms = option_change(
            "timeout_ms",
            req.timeout_ms,
            req.clear_timeout_ms,
            validate::MAX_TIMEOUT_MS,
            " ms",
        )?;
        let types =
            req.event_types.map(|l| validate::event_types("event_types.codes", &l.codes)).transpose()?;
        if let Some(d) = &req.description {
            validate::description("description", d)?;
        }
        let basic_auth = match (req.basic_auth, req.clear_basic_auth) {
            (Some(_), true) => {
                return Err(invalid("clear_basic_auth", "cannot be combined with basic_auth"));
            }
            (Some(auth), false) => Some(Some(validate::basic_auth("basic_auth", auth)?)),
            (None, true) => Some(None),
            (None, false) => None,
        };
        let headers = match (req.headers, req.clear_headers) {
            (Some(_), true) => return Err(invalid("clear_headers", "cannot be combined with headers")),
            (Some(list), false) => Some(validate::headers("headers.headers", list.headers)?),
            (None, true) => Some(Vec::new()),
            (None, false) => None,
        };
        let filter = match (req.filter.as_deref(), req.clear_filter) {
            (Some(_), true) => return Err(invalid("clear_filter", "cannot be combined with filter")),
            (Some(""), false) => {
                return Err(invalid("filter", "must not be empty; use clear_filter to remove it"));
            }
            (Some(source), false) => Some(Some(source.to_owned())),
            (None, true) => Some(None),
            (None, false) => None,
        };
        let current = self.subscription(caller, "id", &req.id).await?;
        // The filter that will stand, checked against the types that will stand: a new filter, or
        // the current one when only the types change.
        if types.is_some() || filter.is_some() {
            let after_types = match &types {
                Some(types) => validate::covered(types),
                None => synap_contract::pattern::covered_types(&current.event_types),
            };
            let after_filter = match &filter {
                Some(new) => new.as_deref(),
                None => current.filter.as_deref(),
            };
            if let Some(source) = after_filter {
                validate::filter("filter", source, &after_types).await.map_err(|status| {
                    if filter.is_none() {
                        invalid(
                            "event_types.codes",
                            format!(
                                "the subscription's filter does not fit these types; change or clear it too ({})",
                                status.message()
                            ),
                        )
                    } else {
                        status
                    }
                })?;
            }
        }
        if types.is_some() || req.enabled == Some(true) {
            let portal = self.portal(&current.portal_id).await?;
            if req.enabled == Some(true) {
                require_webhooks(&portal)?;
            }
            if let Some(types) = &types {
                require_patterns(&portal, "event_types.codes", types)?;
            }
        }
        let current_options = current.options.clone();
        let options = DeliveryOptions {
            ordered: req.ordered.unwrap_or(current_options.ordered),
            max_in_flight: max_in_flight.unwrap_or(current_options.max_in_flight),
            rate_limit_per_sec: rate_limit_per_sec.unwrap_or(current_options.rate_limit_per_sec),
            timeout_ms: timeout_ms.unwrap_or(current_options.timeout_ms),
            omit_traceparent: req.omit_traceparent.unwrap_or(current_options.omit_traceparent),
        };
        // Set before the other changes, whose update returns the row with the new options.
        if options != current_options
            && !synap_db::delivery_state::set_options(&self.pool, &current.id, &options).await.map_err(db)?
        {
            return Err(not_found("subscription", &current.id));
        }
        let changes = Changes {
            url: url.map(|u| u.to_string()),
            event_types: types.as_deref().map(codes),
            filter,
            description: req.description,
            basic_auth,
            enabled: req.enabled,
            headers,
        };
        let updated = synap_db::subscriptions::update(&self.pool, &self.secrets, &current.id, &changes)
            .await
            .map_err(db)?
            .ok_or_else(|| not_found("subscription", &current.id))?;
        tracing::info!(subscription_id = %updated.id, portal_id = %updated.portal_id, "subscription updated");
        self.shown_one(updated).await
    }

    pub(crate) async fn set_enabled(
        &self,
        caller: &Caller,
        id: &str,
        enabled: bool,
    ) -> Result<api::Subscription, Status> {
        let current = self.subscription(caller, "id", id).await?;
        if enabled {
            require_webhooks(&self.portal(&current.portal_id).await?)?;
        }
        let changes = Changes { enabled: Some(enabled), ..Changes::default() };
        let updated = synap_db::subscriptions::update(&self.pool, &self.secrets, &current.id, &changes)
            .await
            .map_err(db)?
            .ok_or_else(|| not_found("subscription", id))?;
        tracing::info!(subscription_id = %updated.id, enabled, "subscription paused or resumed");
        self.shown_one(updated).await
    }

    pub(crate) async fn delete_subscription(
        &self,
        caller: &Caller,
        req: api::DeleteSubscriptionRequest,
    ) -> Result<api::DeleteSubscriptionResponse, Status> {
        let current = self.subscription(caller, "id", &req.id).await?;
        if !synap_db::subscriptions::delete(&self.pool, &current.id).await.map_err(db)? {
            return Err(not_found("subscription", &req.id));
        }
        tracing::info!(subscription_id = %current.id, portal_id = %current.portal_id, "subscription deleted");
        Ok(api::DeleteSubscriptionResponse {})
    }

    pub(crate) async fn rotate_signing_secret(
        &self,
        caller: &Caller,
        req: api::RotateSigningSecretRequest,
    ) -> Result<api::RotateSigningSecretResponse, Status> {
        let overlap = validate::overlap("overlap", req.overlap, self.secret_overlap)?;
        let target = validate::signature_scheme("signature_scheme", req.signature_scheme)?;
        let sub = self.subscription(caller, "subscription_id", &req.subscription_id).await?;
        let overlap = chrono::Duration::from_std(overlap).map_err(|_| invalid("overlap", "is too long"))?;
        let previous_expires_at = Utc::now() + overlap;
        let scheme = match target {
            Some(scheme) => scheme,
            None => {
                let client = self.pool.get().await.map_err(|e| db(e.into()))?;
                let current = synap_db::secrets::public(&client, &[sub.id.as_str()]).await.map_err(db)?;
                current.get(&sub.id).map(|s| s.scheme).unwrap_or_default()
            }
        };
        let key = synap_db::secrets::generate_key(scheme);
        synap_db::secrets::rotate(&self.pool, &self.secrets, &sub.id, &key, previous_expires_at)
            .await
            .map_err(db)?;
        tracing::info!(
            subscription_id = %sub.id,
            scheme = scheme.code(),
            %previous_expires_at,
            "signing secret rotated"
        );
        let signing_secret = if scheme == Scheme::V1 { key.secret } else { String::new() };
        Ok(api::RotateSigningSecretResponse {
            signing_secret,
            previous_expires_at: Some(convert::timestamp(previous_expires_at)),
            signature_scheme: convert::scheme_to_api(scheme) as i32,
            public_key: key.public_key.unwrap_or_default(),
        })
    }

    /// The subscription a test send goes to, and the type to send: FAILED_PRECONDITION when
    /// the sender would not deliver it (paused, portal below Pro, type not allowed).
    pub(crate) async fn test_target(
        &self,
        caller: &Caller,
        req: &api::TestSendRequest,
    ) -> Result<(synap_db::Subscription, EventType), Status> {
        let sub = self.subscription(caller, "subscription_id", &req.subscription_id).await?;
        let portal = self.portal(&sub.portal_id).await?;
        let ty = match req.event_type.as_str() {
            // The first type its list covers that the portal may receive (a `*` subscription of a
            // portal without the store feature is not test-sent store.purchase), else the first.
            "" => {
                let covered = synap_contract::pattern::covered_types(&sub.event_types);
                covered
                    .iter()
                    .copied()
                    .find(|ty| synap_contract::plan::may_receive(portal.plan, &portal.features, *ty).is_ok())
                    .or_else(|| covered.first().copied())
            }
            code => Some(
                EventType::from_code(code)
                    .ok_or_else(|| invalid("event_type", format!("unknown event type {code:?}")))?,
            ),
        }
        .ok_or_else(|| invalid("event_type", "must name an event type"))?;
        require_webhooks(&portal)?;
        require_features(&portal, "event_type", &[ty])?;
        if !sub.enabled {
            return Err(precondition("subscription_id", "the subscription is not active; resume it first"));
        }
        Ok((sub, ty))
    }
}

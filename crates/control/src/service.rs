//! The `synap.control.v1.ControlService` RPCs.

use synap_contract::EventType;
use synap_db::{BasicAuth, NewSubscription, Pool, SecretBox};
use synap_proto::control::v1 as api;
use synap_proto::control::v1::control_service_server::ControlService;
use tonic::{Request, Response, Status};

use crate::errors::{db, invalid, not_found, precondition};
use crate::{convert, validate};

/// The feature that unlocks `store.purchase`.
const STORE_FEATURE: &str = "store";

pub struct ControlApi {
    pub pool: Pool,
    pub secrets: SecretBox,
    pub allow_http_urls: bool,
}

impl ControlApi {
    async fn portal(&self, id: &str) -> Result<synap_db::Portal, Status> {
        synap_db::portals::get(&self.pool, id).await.map_err(db)?.ok_or_else(|| not_found("portal", id))
    }
}

#[tonic::async_trait]
impl ControlService for ControlApi {
    async fn upsert_portal(
        &self,
        request: Request<api::UpsertPortalRequest>,
    ) -> Result<Response<api::Portal>, Status> {
        let req = request.into_inner();
        validate::id("id", &req.id)?;
        let plan = api::Plan::try_from(req.plan).ok().and_then(convert::plan_from_api).ok_or_else(|| {
            invalid("plan", "must be one of PLAN_FREE, PLAN_STARTER, PLAN_PRO, PLAN_ENTERPRISE")
        })?;
        let mut features = Vec::with_capacity(req.features.len());
        for (i, feature) in req.features.into_iter().enumerate() {
            validate::id(&format!("features[{i}]"), &feature)?;
            if !features.contains(&feature) {
                features.push(feature);
            }
        }
        let portal = synap_db::portals::upsert(&self.pool, &req.id, plan, &features).await.map_err(db)?;
        tracing::info!(portal_id = %portal.id, plan = portal.plan.as_str(), "portal upserted");
        Ok(Response::new(convert::portal(portal)))
    }

    async fn get_portal(
        &self,
        request: Request<api::GetPortalRequest>,
    ) -> Result<Response<api::Portal>, Status> {
        let req = request.into_inner();
        validate::id("id", &req.id)?;
        Ok(Response::new(convert::portal(self.portal(&req.id).await?)))
    }

    async fn create_subscription(
        &self,
        request: Request<api::CreateSubscriptionRequest>,
    ) -> Result<Response<api::CreateSubscriptionResponse>, Status> {
        let req = request.into_inner();
        validate::id("portal_id", &req.portal_id)?;
        let url = validate::url("url", &req.url, self.allow_http_urls)?;
        let types = validate::event_types("event_types", &req.event_types)?;
        validate::description("description", &req.description)?;
        let basic_auth = match req.basic_auth {
            Some(auth) => {
                if auth.username.is_empty() || auth.username.contains(':') {
                    return Err(invalid("basic_auth.username", "must be non-empty and contain no ':'"));
                }
                if auth.password.is_empty() {
                    return Err(invalid("basic_auth.password", "must not be empty"));
                }
                Some(BasicAuth { username: auth.username, password: auth.password })
            }
            None => None,
        };

        let portal = self.portal(&req.portal_id).await?;
        if !portal.plan.has_webhooks() {
            return Err(precondition(
                "portal_id",
                format!("portal is on the {} plan; webhooks need Pro or higher", portal.plan.as_str()),
            ));
        }
        if types.iter().any(|t| t.requires_store_feature()) && !portal.has_feature(STORE_FEATURE) {
            return Err(precondition("event_types", "store.purchase needs the portal's `store` feature"));
        }

        let new = NewSubscription {
            portal_id: req.portal_id,
            url: url.to_string(),
            event_types: types.iter().map(|t| EventType::code(*t).to_owned()).collect(),
            description: req.description,
            enabled: req.enabled.unwrap_or(true),
            basic_auth,
        };
        let (created, signing_secret) =
            synap_db::subscriptions::create(&self.pool, &self.secrets, &new).await.map_err(db)?;
        tracing::info!(subscription_id = %created.id, portal_id = %created.portal_id, "subscription created");
        Ok(Response::new(api::CreateSubscriptionResponse {
            subscription: Some(convert::subscription(created)),
            signing_secret,
        }))
    }

    async fn list_subscriptions(
        &self,
        request: Request<api::ListSubscriptionsRequest>,
    ) -> Result<Response<api::ListSubscriptionsResponse>, Status> {
        let req = request.into_inner();
        validate::id("portal_id", &req.portal_id)?;
        self.portal(&req.portal_id).await?;
        let subscriptions = synap_db::subscriptions::list_for_portal(&self.pool, &req.portal_id)
            .await
            .map_err(db)?
            .into_iter()
            .map(convert::subscription)
            .collect();
        Ok(Response::new(api::ListSubscriptionsResponse { subscriptions }))
    }
}

//! The `synap.control.v1.ControlService` RPCs: this file routes each call to the module that
//! implements it (`portals`, `api_keys`, `subscriptions`, `event_types`, `test_send`,
//! `test_filter`).

use std::time::Duration;

use crate::kafka_writer::KafkaWriter;
use synap_db::{Pool, SecretBox};
use synap_outbound::Policy;
use synap_proto::control::v1 as api;
use synap_proto::control::v1::control_service_server::ControlService;
use tonic::{Request, Response, Status};

use crate::auth::Caller;
use crate::config::ControlConfig;
use crate::errors::{db, not_found, precondition};
use crate::test_send::TestSender;

pub struct ControlApi {
    pub pool: Pool,
    pub secrets: SecretBox,
    pub allow_http_urls: bool,
    /// Which addresses subscription URLs may point at (the `[outbound]` section the sender
    /// reads too).
    pub outbound: Policy,
    /// Default validity of a rotated-out signing secret.
    pub secret_overlap: Duration,
    /// How long a create's request id replays the original response (secret included).
    pub request_id_ttl: Duration,
    /// `None` when the deployment gives control no Kafka access: TestSend is then UNAVAILABLE.
    pub test_sender: Option<TestSender>,
    /// `None` when the deployment serves no web portal: CreatePortalLink is then UNAVAILABLE.
    pub portal_links: Option<crate::portal_links::PortalLinks>,
}

impl ControlApi {
    /// The API, writing test sends through `writer`.
    pub fn new(
        config: &ControlConfig,
        pool: Pool,
        secrets: SecretBox,
        writer: KafkaWriter,
        outbound: Policy,
    ) -> Self {
        Self {
            pool,
            secrets,
            allow_http_urls: config.allow_http_urls,
            outbound,
            secret_overlap: Duration::from_secs(config.secret_overlap_seconds),
            request_id_ttl: Duration::from_secs(config.request_id_ttl_seconds),
            test_sender: Some(TestSender {
                writer,
                timeout: Duration::from_millis(config.test_send_timeout_ms),
            }),
            portal_links: None,
        }
    }

    pub(crate) async fn portal(&self, id: &str) -> Result<synap_db::Portal, Status> {
        synap_db::portals::get(&self.pool, id).await.map_err(db)?.ok_or_else(|| not_found("portal", id))
    }

    /// The portal a subscription call acts on: the one named, or a portal key's own when none
    /// is named. Another portal's is NOT_FOUND to a portal key.
    pub(crate) async fn portal_for(
        &self,
        caller: &Caller,
        field: &str,
        id: &str,
    ) -> Result<synap_db::Portal, Status> {
        let id = match (caller, id) {
            (Caller::Portal(own), "") => own.as_str(),
            _ => {
                crate::validate::id(field, id)?;
                id
            }
        };
        if !caller.can_access(id) {
            return Err(not_found("portal", id));
        }
        self.portal(id).await
    }

    /// A subscription the caller may see; NOT_FOUND otherwise, whether or not it exists.
    pub(crate) async fn subscription(
        &self,
        caller: &Caller,
        field: &str,
        id: &str,
    ) -> Result<synap_db::Subscription, Status> {
        crate::validate::id(field, id)?;
        match synap_db::subscriptions::get(&self.pool, id).await.map_err(db)? {
            Some(sub) if caller.can_access(&sub.portal_id) => Ok(sub),
            _ => Err(not_found("subscription", id)),
        }
    }

    /// Subscriptions as the API shows them: their signing scheme and public keys and their
    /// extra headers are read in one query each for the whole page.
    pub(crate) async fn shown(
        &self,
        subs: Vec<synap_db::Subscription>,
    ) -> Result<Vec<api::Subscription>, Status> {
        let ids: Vec<&str> = subs.iter().map(|s| s.id.as_str()).collect();
        let client = self.pool.get().await.map_err(|e| db(e.into()))?;
        let client = &client;
        let mut signing = synap_db::secrets::public(client, &ids).await.map_err(db)?;
        let mut headers = synap_db::custom_headers::shown(client, &ids).await.map_err(db)?;
        Ok(subs
            .into_iter()
            .map(|s| {
                let (signing, headers) = (signing.remove(&s.id), headers.remove(&s.id));
                crate::convert::subscription(s, signing.unwrap_or_default(), headers.unwrap_or_default())
            })
            .collect())
    }

    pub(crate) async fn shown_one(&self, sub: synap_db::Subscription) -> Result<api::Subscription, Status> {
        Ok(self.shown(vec![sub]).await?.remove(0))
    }
}

/// FAILED_PRECONDITION unless the portal may receive webhooks (Pro or higher).
pub(crate) fn require_webhooks(portal: &synap_db::Portal) -> Result<(), Status> {
    synap_contract::plan::may_use_webhooks(portal.plan)
        .map_err(|refusal| precondition("portal_id", refusal.to_string()))
}

/// FAILED_PRECONDITION when the portal may not receive one of `types` (e.g. store.purchase
/// without the `store` feature).
pub(crate) fn require_features(
    portal: &synap_db::Portal,
    field: &str,
    types: &[synap_contract::EventType],
) -> Result<(), Status> {
    for ty in types {
        synap_contract::plan::may_receive(portal.plan, &portal.features, *ty)
            .map_err(|refusal| precondition(field, refusal.to_string()))?;
    }
    Ok(())
}

/// The plan rule for a subscription's list (`field[i]` names the entry at fault): an exact type
/// the portal may not receive is refused, as is a wildcard none of whose types it may receive
/// (`store.*` without the `store` feature). A wildcard that covers some is accepted: the
/// router applies the rule per event, so a `*` subscription without the feature simply never
/// receives `store.purchase`, and starts to once the portal has it.
pub(crate) fn require_patterns(
    portal: &synap_db::Portal,
    field: &str,
    patterns: &[synap_contract::TypePattern],
) -> Result<(), Status> {
    for (i, pattern) in patterns.iter().enumerate() {
        let field = format!("{field}[{i}]");
        match pattern {
            synap_contract::TypePattern::Exact(ty) => require_features(portal, &field, &[*ty])?,
            wildcard => {
                let types = wildcard.types();
                let refusals: Vec<_> = types
                    .iter()
                    .filter_map(|ty| {
                        synap_contract::plan::may_receive(portal.plan, &portal.features, *ty).err()
                    })
                    .collect();
                if let (true, Some(first)) = (refusals.len() == types.len(), refusals.first()) {
                    return Err(precondition(&field, format!("{}: {first}", wildcard.text())));
                }
            }
        }
    }
    Ok(())
}

fn caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    Caller::of(request).cloned()
}

#[tonic::async_trait]
impl ControlService for ControlApi {
    async fn upsert_portal(
        &self,
        r: Request<api::UpsertPortalRequest>,
    ) -> Result<Response<api::Portal>, Status> {
        caller(&r)?.require_admin()?;
        self.upsert_portal(r.into_inner()).await.map(Response::new)
    }

    async fn get_portal(&self, r: Request<api::GetPortalRequest>) -> Result<Response<api::Portal>, Status> {
        caller(&r)?.require_admin()?;
        self.get_portal(r.into_inner()).await.map(Response::new)
    }

    async fn list_portals(
        &self,
        r: Request<api::ListPortalsRequest>,
    ) -> Result<Response<api::ListPortalsResponse>, Status> {
        caller(&r)?.require_admin()?;
        self.list_portals(r.into_inner()).await.map(Response::new)
    }

    async fn create_api_key(
        &self,
        r: Request<api::CreateApiKeyRequest>,
    ) -> Result<Response<api::CreateApiKeyResponse>, Status> {
        caller(&r)?.require_admin()?;
        self.create_api_key(r.into_inner()).await.map(Response::new)
    }

    async fn list_api_keys(
        &self,
        r: Request<api::ListApiKeysRequest>,
    ) -> Result<Response<api::ListApiKeysResponse>, Status> {
        caller(&r)?.require_admin()?;
        self.list_api_keys(r.into_inner()).await.map(Response::new)
    }

    async fn revoke_api_key(
        &self,
        r: Request<api::RevokeApiKeyRequest>,
    ) -> Result<Response<api::ApiKey>, Status> {
        caller(&r)?.require_admin()?;
        self.revoke_api_key(r.into_inner()).await.map(Response::new)
    }

    async fn create_subscription(
        &self,
        r: Request<api::CreateSubscriptionRequest>,
    ) -> Result<Response<api::CreateSubscriptionResponse>, Status> {
        let caller = caller(&r)?;
        self.create_subscription(&caller, r.into_inner()).await.map(Response::new)
    }

    async fn get_subscription(
        &self,
        r: Request<api::GetSubscriptionRequest>,
    ) -> Result<Response<api::Subscription>, Status> {
        let caller = caller(&r)?;
        let sub = self.subscription(&caller, "id", &r.into_inner().id).await?;
        Ok(Response::new(self.shown_one(sub).await?))
    }

    async fn list_subscriptions(
        &self,
        r: Request<api::ListSubscriptionsRequest>,
    ) -> Result<Response<api::ListSubscriptionsResponse>, Status> {
        let caller = caller(&r)?;
        self.list_subscriptions(&caller, r.into_inner()).await.map(Response::new)
    }

    async fn update_subscription(
        &self,
        r: Request<api::UpdateSubscriptionRequest>,
    ) -> Result<Response<api::Subscription>, Status> {
        let caller = caller(&r)?;
        self.update_subscription(&caller, r.into_inner()).await.map(Response::new)
    }

    async fn delete_subscription(
        &self,
        r: Request<api::DeleteSubscriptionRequest>,
    ) -> Result<Response<api::DeleteSubscriptionResponse>, Status> {
        let caller = caller(&r)?;
        self.delete_subscription(&caller, r.into_inner()).await.map(Response::new)
    }

    async fn pause_subscription(
        &self,
        r: Request<api::PauseSubscriptionRequest>,
    ) -> Result<Response<api::Subscription>, Status> {
        let caller = caller(&r)?;
        self.set_enabled(&caller, &r.into_inner().id, false).await.map(Response::new)
    }

    async fn resume_subscription(
        &self,
        r: Request<api::ResumeSubscriptionRequest>,
    ) -> Result<Response<api::Subscription>, Status> {
        let caller = caller(&r)?;
        self.set_enabled(&caller, &r.into_inner().id, true).await.map(Response::new)
    }

    async fn rotate_signing_secret(
        &self,
        r: Request<api::RotateSigningSecretRequest>,
    ) -> Result<Response<api::RotateSigningSecretResponse>, Status> {
        let caller = caller(&r)?;
        self.rotate_signing_secret(&caller, r.into_inner()).await.map(Response::new)
    }

    async fn list_event_types(
        &self,
        _: Request<api::ListEventTypesRequest>,
    ) -> Result<Response<api::ListEventTypesResponse>, Status> {
        Ok(Response::new(crate::event_types::list()))
    }

    async fn test_send(
        &self,
        r: Request<api::TestSendRequest>,
    ) -> Result<Response<api::TestSendResponse>, Status> {
        let caller = caller(&r)?;
        self.test_send(&caller, r.into_inner()).await.map(Response::new)
    }

    async fn test_filter(
        &self,
        r: Request<api::TestFilterRequest>,
    ) -> Result<Response<api::TestFilterResponse>, Status> {
        let caller = caller(&r)?;
        self.test_filter(&caller, r.into_inner()).await.map(Response::new)
    }

    async fn create_portal_link(
        &self,
        r: Request<api::CreatePortalLinkRequest>,
    ) -> Result<Response<api::CreatePortalLinkResponse>, Status> {
        let caller = caller(&r)?;
        self.create_portal_link(&caller, r.into_inner()).await.map(Response::new)
    }
}

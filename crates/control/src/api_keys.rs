//! Portal API keys: create, list, revoke (admin only; the service checks the caller).

use synap_proto::control::v1 as api;
use tonic::Status;

use crate::errors::{db, not_found};
use crate::service::ControlApi;
use crate::{convert, validate};

impl ControlApi {
    pub(crate) async fn create_api_key(
        &self,
        req: api::CreateApiKeyRequest,
    ) -> Result<api::CreateApiKeyResponse, Status> {
        validate::id("portal_id", &req.portal_id)?;
        validate::description("name", &req.name)?;
        self.portal(&req.portal_id).await?;
        let (key, token) =
            synap_db::api_keys::create(&self.pool, &req.portal_id, &req.name).await.map_err(db)?;
        tracing::info!(key_id = %key.id, portal_id = %key.portal_id, "api key created");
        Ok(api::CreateApiKeyResponse { api_key: Some(convert::api_key(key)), token })
    }

    pub(crate) async fn list_api_keys(
        &self,
        req: api::ListApiKeysRequest,
    ) -> Result<api::ListApiKeysResponse, Status> {
        validate::id("portal_id", &req.portal_id)?;
        self.portal(&req.portal_id).await?;
        let keys =
            synap_db::api_keys::list(&self.pool, &req.portal_id, req.include_revoked).await.map_err(db)?;
        Ok(api::ListApiKeysResponse { api_keys: keys.into_iter().map(convert::api_key).collect() })
    }

    pub(crate) async fn revoke_api_key(&self, req: api::RevokeApiKeyRequest) -> Result<api::ApiKey, Status> {
        validate::id("id", &req.id)?;
        let key = synap_db::api_keys::revoke(&self.pool, &req.id)
            .await
            .map_err(db)?
            .ok_or_else(|| not_found("api key", &req.id))?;
        tracing::info!(key_id = %key.id, portal_id = %key.portal_id, "api key revoked");
        Ok(convert::api_key(key))
    }
}

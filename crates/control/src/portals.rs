//! Portals: upsert, get, list (admin only; the service checks the caller).

use synap_proto::control::v1 as api;
use tonic::Status;

use crate::errors::{db, invalid};
use crate::service::ControlApi;
use crate::{convert, page, validate};

impl ControlApi {
    pub(crate) async fn upsert_portal(&self, req: api::UpsertPortalRequest) -> Result<api::Portal, Status> {
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
        Ok(convert::portal(portal))
    }

    pub(crate) async fn get_portal(&self, req: api::GetPortalRequest) -> Result<api::Portal, Status> {
        validate::id("id", &req.id)?;
        Ok(convert::portal(self.portal(&req.id).await?))
    }

    pub(crate) async fn list_portals(
        &self,
        req: api::ListPortalsRequest,
    ) -> Result<api::ListPortalsResponse, Status> {
        const QUERY: &str = "portals";
        let size = page::size(req.page_size)?;
        let after = page::position(&req.page_token, QUERY, 1)?.map(|mut p| p.remove(0));
        let (portals, next) =
            synap_db::portals::list(&self.pool, after.as_deref(), size).await.map_err(db)?;
        Ok(api::ListPortalsResponse {
            portals: portals.into_iter().map(convert::portal).collect(),
            next_page_token: next.map(|id| page::token(QUERY, &[&id])).unwrap_or_default(),
        })
    }
}

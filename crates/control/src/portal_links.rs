//! CreatePortalLink: a single-use sign-in link to the web portal, for one portal.

use std::time::Duration;

use synap_proto::control::v1 as api;
use tonic::Status;

use crate::auth::Caller;
use crate::convert::timestamp;
use crate::errors::db;
use crate::service::ControlApi;

/// What minting a link needs from the `[portal]` configuration.
#[derive(Clone, Debug)]
pub struct PortalLinks {
    /// `portal.public_url`, without a trailing slash.
    pub public_url: String,
    pub ttl: Duration,
}

impl ControlApi {
    pub(crate) async fn create_portal_link(
        &self,
        caller: &Caller,
        r: api::CreatePortalLinkRequest,
    ) -> Result<api::CreatePortalLinkResponse, Status> {
        let Some(links) = &self.portal_links else {
            return Err(Status::unavailable(
                "this deployment serves no web portal (portal.public_url is not set)",
            ));
        };
        // Same scoping as every subscription call: a portal key's own portal, or NOT_FOUND.
        let portal = self.portal_for(caller, "portal_id", &r.portal_id).await?;
        let (token, expires_at) =
            synap_db::portal_sessions::create_link(&self.pool, &portal.id, r.read_only, links.ttl)
                .await
                .map_err(db)?;
        // The link is a credential: log who it is for, never the link.
        tracing::info!(portal_id = %portal.id, read_only = r.read_only, "portal sign-in link created");
        Ok(api::CreatePortalLinkResponse {
            url: format!("{}/signin/{token}", links.public_url),
            expires_at: Some(timestamp(expires_at)),
            portal_id: portal.id,
        })
    }
}

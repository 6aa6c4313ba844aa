//! A DNS resolver for reqwest that returns only addresses the policy allows.

use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::Policy;

/// Checks the name, resolves it, then drops every address the policy refuses
/// ([`Policy::resolve`]). When none is left the request fails with [`crate::Refused`] in its
/// error chain. The client connects only to what this returns, so the checked address is the
/// connected one.
#[derive(Clone, Debug)]
pub struct Resolver {
    policy: Arc<Policy>,
}

impl Resolver {
    pub fn new(policy: Policy) -> Self {
        Self { policy: Arc::new(policy) }
    }
}

impl Resolve for Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            // Port 0: reqwest replaces it with the URL's port.
            match policy.resolve(name.as_str(), 0).await {
                Ok(allowed) => Ok(Box::new(allowed.into_iter()) as Addrs),
                Err(refused) => Err(Box::new(refused) as Box<dyn std::error::Error + Send + Sync>),
            }
        })
    }
}

//! Who is asking, and the access that lets them see plate data.
//!
//! DEVELOPMENT IDENTITY — TEMPORARY. Until accounts, two-factor sign-in,
//! roles, training and the purpose policy exist (the accountability
//! issue), every request is served as one fixed identity, `development`,
//! with administrator rights, and every access it opens is marked
//! `development = 1` in the access log. It exists so the read store can be
//! used and tested end to end; it must be removed, together with this
//! paragraph, when accounts land. Nothing else in the server makes
//! accesses: `Access` values come only from [`open_access`].

use platekeeper_core::Purpose;
use platekeeper_store::{Access, AccessKind, AccessRequest};

use crate::{blocking, ApiError, AppState};

/// The person behind a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub username: String,
    pub affiliation: String,
    pub development: bool,
}

/// The stand-in identity described above.
pub fn development_identity() -> Identity {
    Identity {
        username: "development".into(),
        affiliation: "DEVELOPMENT IDENTITY (no accounts yet)".into(),
        development: true,
    }
}

pub fn warn_development_identity() {
    tracing::warn!(
        "accounts are not implemented yet: every request is served as the DEVELOPMENT identity \
         with administrator rights, and its accesses are marked as such in the access log. \
         Do not expose this server to a network."
    );
}

/// Logs an access durably and returns it; only then may data flow.
pub async fn open_access(
    state: &AppState,
    who: &Identity,
    kind: AccessKind,
    query: serde_json::Value,
    purpose: Purpose,
    client: Option<String>,
) -> Result<Access, ApiError> {
    let req = AccessRequest {
        username: who.username.clone(),
        affiliation: who.affiliation.clone(),
        kind,
        query,
        purpose,
        client,
        development: who.development,
    };
    let store = state.store.clone();
    let now = state.now_ms();
    blocking(move || Ok(store.open_access(req, now)?)).await
}

//! The OpenAPI document, generated from the handlers' annotations and
//! served at `GET /api/openapi.json`.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Platekeeper", description = "ALPR read store, search and accountability. Every search is an access and is logged with its purpose."),
    paths(
        crate::ingest::post_reads,
        crate::openalpr::post_openalpr,
        crate::cameras::create_camera,
        crate::cameras::list_cameras,
        crate::search::search,
        crate::search::read_image,
        crate::ops::healthz,
        crate::ops::metrics_text,
    ),
    components(schemas(
        crate::error::ErrorBody,
        crate::error::ErrorDetail,
        crate::ingest::ReadsBody,
        crate::ingest::IngestResponse,
        crate::ingest::Rejected,
        crate::cameras::CameraBody,
        crate::cameras::CameraCreated,
        crate::cameras::CameraInfo,
        crate::cameras::CameraList,
        crate::search::SearchRequest,
        crate::search::SearchResponse,
        crate::search::ReadResult,
        crate::search::PurposeBody,
        crate::search::Near,
        crate::search::LatLon,
        crate::ops::Health,
    )),
    modifiers(&CameraKey)
)]
pub struct ApiDoc;

struct CameraKey;

impl Modify for CameraKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "camera_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/api/openapi.json",
        get(|| async { Json(ApiDoc::openapi()) }),
    )
}

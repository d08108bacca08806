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
        crate::sessions::sign_in,
        crate::sessions::sign_out,
        crate::sessions::me,
        crate::sessions::change_password,
        crate::sessions::begin_totp,
        crate::sessions::confirm_totp,
        crate::users::create,
        crate::users::list,
        crate::users::show,
        crate::users::training,
        crate::users::approval,
        crate::users::role,
        crate::users::suspend,
        crate::users::reactivate,
        crate::users::unlock,
        crate::users::reset,
        crate::users::delete,
        crate::audit::log,
        crate::audit::verify,
        crate::audit::get_policy,
        crate::audit::put_policy,
        crate::hotlists::create_list,
        crate::hotlists::list_lists,
        crate::hotlists::get_list,
        crate::hotlists::delete_list,
        crate::hotlists::add_entry,
        crate::hotlists::list_entries,
        crate::hotlists::remove_entry,
        crate::hotlists::import_file,
        crate::alerts::stream,
        crate::alerts::list_alerts,
        crate::alerts::get_alert,
        crate::alerts::alert_read,
        crate::alerts::acknowledge,
        crate::alerts::disposition,
        crate::alerts::set_position,
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
        crate::sessions::SignInBody,
        crate::sessions::SessionCreated,
        crate::sessions::Me,
        crate::sessions::PasswordBody,
        crate::sessions::TotpEnrolment,
        crate::sessions::CodeBody,
        crate::users::NewUserBody,
        crate::users::OneTimePassword,
        crate::users::UserView,
        crate::users::UserList,
        crate::users::TrainingBody,
        crate::users::ApprovalBody,
        crate::users::RoleBody,
        crate::users::ReasonBody,
        crate::audit::LogEntryView,
        crate::audit::LogPage,
        crate::audit::VerifyResult,
        crate::hotlists::NewListBody,
        crate::hotlists::EntryBody,
        crate::alerts::AlertRead,
        crate::alerts::AlertList,
        crate::hotlists::ListOfLists,
        crate::hotlists::EntryList,
        crate::alerts::DispositionBody,
        crate::alerts::PositionBody,
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
        components.add_security_scheme(
            "session",
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

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
        crate::retention::create_hold,
        crate::retention::list_holds,
        crate::retention::get_hold,
        crate::retention::lift_hold,
        crate::retention::export_evidence,
        crate::retention::list_downloads,
        crate::retention::record_destruction,
        crate::retention::purge,
        crate::sharing::create_agency,
        crate::sharing::list_agencies,
        crate::sharing::create_request,
        crate::sharing::list_requests,
        crate::sharing::get_request,
        crate::sharing::get_document,
        crate::sharing::approve,
        crate::sharing::deny,
        crate::sharing::export,
        crate::sharing::record_transfer,
        crate::sharing::register,
        crate::sharing::create_records_request,
        crate::sharing::list_records_requests,
        crate::corrections::correct,
        crate::corrections::list,
        crate::audit::report,
        crate::audit::stored_reports,
        crate::transparency::transparency,
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
        crate::retention::HoldRequest,
        crate::retention::HoldPage,
        crate::retention::EvidenceRequest,
        crate::retention::DownloadPage,
        crate::retention::DestructionRequest,
        crate::sharing::NewAgency,
        crate::sharing::AgencyList,
        crate::sharing::DocumentBody,
        crate::sharing::NewRequest,
        crate::sharing::RequestPage,
        crate::sharing::Decision,
        crate::sharing::NewTransfer,
        crate::sharing::Register,
        crate::sharing::NewRecordsRequest,
        crate::sharing::RecordsRequestReceipt,
        crate::sharing::RecordsRequestList,
        crate::corrections::CorrectionRequest,
        crate::corrections::CorrectionList,
        crate::transparency::Transparency,
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

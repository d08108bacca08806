//! A JSON body extractor whose refusals use the API's error shape, and
//! helpers that read one field of an object and name it when it is wrong.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::ApiError;

/// Like `axum::Json`, but a bad body gets `malformed_json` (400),
/// `body_too_large` (413), `unsupported_media_type` (415) or
/// `invalid_body` (422) in the API's error shape.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

pub fn json_rejection(r: JsonRejection) -> ApiError {
    let detail = r.body_text();
    match r {
        JsonRejection::JsonSyntaxError(_) => ApiError::bad_request(
            "malformed_json",
            format!("the body is not valid JSON: {detail}"),
        ),
        JsonRejection::JsonDataError(_) => ApiError::unprocessable(
            "invalid_body",
            format!("the body does not have the expected fields: {detail}"),
        ),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the request body is larger than this server accepts; send smaller batches",
        ),
        other => ApiError::bad_request("unreadable_body", other.body_text()),
    }
}

/// An optional JSON body: absent or empty gives `T::default()`; present
/// but malformed is refused like [`ApiJson`].
pub struct OptionalJson<T>(pub T);

impl<S, T> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_request("unreadable_body", e.body_text()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        serde_json::from_slice(&bytes)
            .map(OptionalJson)
            .map_err(|e| {
                ApiError::bad_request(
                    "malformed_json",
                    format!("the body is not valid JSON of the expected shape: {e}"),
                )
            })
    }
}

/// Reads typed fields out of one JSON object, naming the field (with a
/// prefix such as `reads[3].`) in every error.
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
}

pub type FieldError = (&'static str, &'static str, String);

impl<'a> Fields<'a> {
    pub fn of(v: &'a Value) -> Result<Fields<'a>, FieldError> {
        v.as_object().map(|obj| Fields { obj }).ok_or((
            "read",
            "invalid_read",
            "each read must be a JSON object".to_string(),
        ))
    }

    fn present(&self, name: &str) -> Option<&'a Value> {
        self.obj.get(name).filter(|v| !v.is_null())
    }

    pub fn string(&self, name: &'static str) -> Result<Option<String>, FieldError> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err((name, "invalid_type", format!("{name} must be a string"))),
        }
    }

    pub fn number(&self, name: &'static str) -> Result<Option<f64>, FieldError> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            // Some agents send numbers as strings; accept the unambiguous ones.
            Some(Value::String(s)) => s.trim().parse::<f64>().map(Some).map_err(|_| {
                (
                    name,
                    "invalid_type",
                    format!("{name} must be a number, not {s:?}"),
                )
            }),
            Some(_) => Err((name, "invalid_type", format!("{name} must be a number"))),
        }
    }

    pub fn integer(&self, name: &'static str) -> Result<Option<i64>, FieldError> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or((
                name,
                "invalid_type",
                format!("{name} must be an integer"),
            )),
            Some(_) => Err((name, "invalid_type", format!("{name} must be an integer"))),
        }
    }

    pub fn object(&self, name: &'static str) -> Result<Option<Fields<'a>>, FieldError> {
        match self.present(name) {
            None => Ok(None),
            Some(v @ Value::Object(_)) => Ok(Some(Fields::of(v)?)),
            Some(_) => Err((name, "invalid_type", format!("{name} must be an object"))),
        }
    }

    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.present(name)
    }
}

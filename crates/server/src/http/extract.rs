//! Extractors that turn every malformed request into a problem response instead of axum's
//! plain-text rejections.

use super::error::{ApiError, ErrorCode};
use crate::domain::InvalidId;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

/// A JSON object body: `Content-Type: application/json` (or any `+json` type), within the
/// body limit, well-formed, with no unknown or duplicate fields.
pub struct JsonBody<T>(pub T);

/// Like [`JsonBody`], but an empty body or `null` is allowed and means `None`.
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (json, body) = read_body(req, state).await?;
        parse_json(json, &body)?.map(Self).ok_or_else(not_an_object)
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (json, body) = read_body(req, state).await?;
        if body.is_empty() {
            return Ok(Self(None));
        }
        parse_json(json, &body).map(Self)
    }
}

/// Whether the body is declared JSON, and the body.
async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<(bool, Bytes), ApiError> {
    let json = is_json(req.headers());
    let body = Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::from(ErrorCode::PayloadTooLarge)
        } else {
            ApiError::invalid_request(rejection.body_text())
        }
    })?;
    Ok((json, body))
}

/// A JSON object, or `None` for `null`, from a body declared `json`. Anything else is refused
/// before serde sees it: serde would also read a struct from an array of its fields.
fn parse_json<T: DeserializeOwned>(json: bool, body: &[u8]) -> Result<Option<T>, ApiError> {
    if !json {
        return Err(ApiError::from(ErrorCode::UnsupportedMediaType));
    }
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => serde_json::from_slice(body)
            .map(Some)
            .map_err(|error| ApiError::invalid_request(format!("invalid JSON body: {error}"))),
        _ if serde_json::from_slice::<()>(body).is_ok() => Ok(None),
        _ => Err(not_an_object()),
    }
}

fn not_an_object() -> ApiError {
    ApiError::invalid_request("the body must be a JSON object")
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(Ok(content_type)) = headers.get(header::CONTENT_TYPE).map(|v| v.to_str()) else {
        return false;
    };
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    let subtype = subtype.to_ascii_lowercase();
    kind.eq_ignore_ascii_case("application")
        && (subtype == "json" || subtype.len() > "+json".len() && subtype.ends_with("+json"))
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::invalid_request(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::invalid_request(rejection.body_text())
    }
}

/// Parses an identifier from the path, naming the parameter in the error.
pub fn parse_id<T: std::str::FromStr<Err = InvalidId>>(
    raw: &str,
    name: &str,
) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|why| ApiError::invalid_request(format!("{name} {why}, got {raw:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_type(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn json_content_types_are_recognised() {
        assert!(is_json(&with_type("application/json")));
        assert!(is_json(&with_type("Application/JSON; charset=utf-8")));
        assert!(is_json(&with_type("application/merge-patch+json")));
        assert!(!is_json(&with_type("text/plain")));
        assert!(!is_json(&with_type("application/jsonx")));
        assert!(!is_json(&with_type("application/+json")));
        assert!(!is_json(&HeaderMap::new()));
    }
}

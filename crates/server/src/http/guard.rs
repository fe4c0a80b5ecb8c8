//! The gate in front of every route: requests refused on their head alone, before
//! authentication, routing or the body (an HTTP/1.1 request without exactly one `Host`, a
//! header that may appear once sent twice, a declared body over the limit), then requests
//! without a token where one is needed, then requests not answered in time.

use super::auth::{self, ApiTokens};
use super::batches;
use super::error::{ApiError, ErrorCode};
use super::writes::IDEMPOTENCY_KEY;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, Version, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;

/// Headers whose second copy would otherwise be silently ignored: which one a proxy, the
/// authentication or the JSON parser looked at could differ.
const SINGLETONS: [HeaderName; 3] = [header::AUTHORIZATION, header::CONTENT_TYPE, IDEMPOTENCY_KEY];

/// What every request must pass before its route sees it, in this order: a well-formed
/// head (`refusal`), a token where one is needed (`auth`), and an answer in time.
#[derive(Debug, Clone)]
pub struct Gate {
    pub limits: BodyLimits,
    pub tokens: ApiTokens,
    /// Time to receive a request and answer it.
    pub time_limit: Duration,
}

/// The largest body of a batch, and of every other request.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub default: usize,
    pub batch: usize,
}

/// Middleware: answers a request that does not pass the gate with its problem. One
/// middleware rather than one per check: each layer costs every request a boxed future
/// and a clone of the routes below it.
pub async fn admit(State(gate): State<Arc<Gate>>, request: Request, next: Next) -> Response {
    let max_body = if request.uri().path() == batches::PATH {
        gate.limits.batch
    } else {
        gate.limits.default
    };
    let refused = refusal(request.version(), request.headers(), max_body)
        .or_else(|| auth::refusal(&gate.tokens, &request));
    if let Some(error) = refused {
        return error.into_response();
    }
    match tokio::time::timeout(gate.time_limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::from(ErrorCode::RequestTimeout).into_response(),
    }
}

fn refusal(version: Version, headers: &HeaderMap, max_body: usize) -> Option<ApiError> {
    // RFC 9112, section 3.2: a server must answer 400 to an HTTP/1.1 request without a Host
    // header or with more than one.
    if version == Version::HTTP_11 && headers.get_all(header::HOST).iter().count() != 1 {
        return Some(ApiError::invalid_request(
            "an HTTP/1.1 request needs exactly one Host header",
        ));
    }
    if let Some(name) = SINGLETONS
        .iter()
        .find(|name| headers.get_all(*name).iter().nth(1).is_some())
    {
        return Some(ApiError::invalid_request(format!("send one {name} header")));
    }
    // A body declared too large is refused before any of it is read, so a client that waits
    // for `100 Continue` gets the 413 instead. (hyper has refused a malformed Content-Length.)
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max_body as u64) {
        return Some(ErrorCode::PayloadTooLarge.into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(list: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for &(name, value) in list {
            map.append(name, HeaderValue::from_static(value));
        }
        map
    }

    fn code(version: Version, list: &[(&'static str, &'static str)]) -> Option<ErrorCode> {
        refusal(version, &headers(list), 100).map(|error| error.code())
    }

    #[test]
    fn http_1_1_needs_exactly_one_host() {
        let bad = Some(ErrorCode::InvalidRequest);
        assert_eq!(code(Version::HTTP_11, &[("host", "a")]), None);
        assert_eq!(code(Version::HTTP_11, &[]), bad);
        assert_eq!(code(Version::HTTP_11, &[("host", "a"), ("host", "b")]), bad);
        assert_eq!(code(Version::HTTP_10, &[]), None);
    }

    #[test]
    fn a_singleton_header_sent_twice_is_refused() {
        for name in ["authorization", "content-type", "idempotency-key"] {
            let twice = [("host", "a"), (name, "x"), (name, "x")];
            assert_eq!(
                code(Version::HTTP_11, &twice),
                Some(ErrorCode::InvalidRequest),
                "{name}"
            );
        }
        let once = [("host", "a"), ("accept", "x"), ("accept", "y")];
        assert_eq!(code(Version::HTTP_11, &once), None);
    }

    #[test]
    fn a_declared_length_over_the_limit_is_413() {
        let host = ("host", "a");
        assert_eq!(
            code(Version::HTTP_11, &[host, ("content-length", "100")]),
            None
        );
        assert_eq!(
            code(Version::HTTP_11, &[host, ("content-length", "101")]),
            Some(ErrorCode::PayloadTooLarge)
        );
    }
}

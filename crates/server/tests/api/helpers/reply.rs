//! A response read whole, whether it came over a socket (`reqwest`) or from the router in
//! process (`axum`), so that one set of checks serves both kinds of test; and the checks of
//! the JSON in it (problems, ids, timestamps, field sets).

use axum::body::Bytes;
use reqwest::StatusCode;
use reqwest::header::{AsHeaderName, CONTENT_TYPE, HeaderMap};
use serde_json::Value;
use uuid::Uuid;

/// The header that marks an answer replayed from a stored decision.
const REPLAYED: &str = "Idempotent-Replayed";

/// Status, headers and the exact body bytes of one answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// Reads `response` to its end.
    pub async fn of(response: impl IntoReply) -> Self {
        response.into_reply().await
    }

    /// The body as JSON; `Null` when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body as text, for failure messages and byte-for-byte comparisons.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value, when present and printable.
    pub fn header(&self, name: impl AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Whether the answer says it is a replay: `Some("true")`, or `None` without the header.
    pub fn replayed(&self) -> Option<&str> {
        self.header(REPLAYED)
    }
}

/// Anything a test gets an answer as.
pub trait IntoReply {
    fn into_reply(self) -> impl Future<Output = Reply> + Send;
}

impl IntoReply for Reply {
    async fn into_reply(self) -> Reply {
        self
    }
}

impl IntoReply for &Reply {
    async fn into_reply(self) -> Reply {
        self.clone()
    }
}

impl IntoReply for reqwest::Response {
    async fn into_reply(self) -> Reply {
        let (status, headers) = (self.status(), self.headers().clone());
        let body = self.bytes().await.expect("the whole body arrives");
        Reply {
            status,
            headers,
            body,
        }
    }
}

impl IntoReply for axum::response::Response {
    async fn into_reply(self) -> Reply {
        let (parts, body) = self.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .expect("the router's body is readable");
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }
}

/// Status and JSON body (`Null` when not JSON) of a response.
pub async fn status_and_body(response: impl IntoReply) -> (StatusCode, Value) {
    let reply = response.into_reply().await;
    (reply.status, reply.json())
}

/// Checks that `response` is an RFC 9457 problem with `status` and `code`, and returns its
/// body.
pub async fn assert_problem(response: impl IntoReply, status: StatusCode, code: &str) -> Value {
    assert_problem_in("", response, status, code).await
}

/// [`assert_problem`] for one case of a table, named in any failure.
pub async fn assert_problem_in(
    case: &str,
    response: impl IntoReply,
    status: StatusCode,
    code: &str,
) -> Value {
    let reply = response.into_reply().await;
    let body = reply.json();
    assert_eq!(reply.status, status, "{case}: status of {}", reply.text());
    assert_eq!(
        reply.header(CONTENT_TYPE),
        Some("application/problem+json"),
        "{case}: content type of {body}"
    );
    assert_eq!(body["code"], code, "{case}: code of {body}");
    assert_eq!(
        body["status"],
        status.as_u16(),
        "{case}: status field of {body}"
    );
    for field in ["type", "title", "detail"] {
        assert!(
            body[field].is_string(),
            "{case}: {field} is a string in {body}"
        );
    }
    body
}

/// The value is a UUID in a string; returns it.
pub fn assert_uuid(value: &Value) -> Uuid {
    value
        .as_str()
        .and_then(|s| Uuid::try_parse(s).ok())
        .unwrap_or_else(|| panic!("{value} is a UUID"))
}

/// The value is an RFC 3339 timestamp in a string.
pub fn assert_timestamp(value: &Value) {
    timestamp(value);
}

/// The instant an RFC 3339 timestamp in a string names; panics when it is none.
pub fn timestamp(value: &Value) -> chrono::DateTime<chrono::Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is a string"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|_| panic!("{value} is an RFC 3339 timestamp"))
        .to_utc()
}

/// The field names of a JSON object, sorted: a record's exact shape in one comparison.
pub fn field_names(body: &Value) -> Vec<&str> {
    let mut names: Vec<_> = body
        .as_object()
        .unwrap_or_else(|| panic!("{body} is an object"))
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    names
}

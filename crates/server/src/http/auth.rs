//! Optional bearer-token authentication for every `/api/` route. Health checks and the
//! documentation stay open, so orchestrators and readers need no token.
//!
//! Tokens are kept only as SHA-256 digests, and a presented token is hashed and compared
//! with every digest in constant time: neither the configuration nor the timing of an
//! answer gives a token away.

use super::error::{ApiError, ErrorCode};
use axum::http::{Request, header};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Prefix of a token given by its digest, e.g. `sha256:9f86d0…`.
const DIGEST_PREFIX: &str = "sha256:";

/// The accepted tokens; empty means authentication is off.
#[derive(Debug, Clone, Default)]
pub struct ApiTokens(Arc<[[u8; 32]]>);

impl ApiTokens {
    /// Parses a comma-separated list: plain tokens, or `sha256:` and 64 hex digits.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| match entry.strip_prefix(DIGEST_PREFIX) {
                Some(digest) => {
                    let mut bytes = [0; 32];
                    hex::decode_to_slice(digest, &mut bytes)
                        .map(|()| bytes)
                        .map_err(|_| format!("`{DIGEST_PREFIX}` must be followed by 64 hex digits"))
                }
                None => Ok(Sha256::digest(entry.as_bytes()).into()),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|digests| Self(digests.into()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn accepts(&self, token: &[u8]) -> bool {
        let presented: [u8; 32] = Sha256::digest(token).into();
        // Every digest is compared in full, whatever matched before.
        let found = self
            .0
            .iter()
            .fold(subtle::Choice::from(0), |found, digest| {
                found | digest.ct_eq(&presented)
            });
        found.into()
    }
}

/// The token of an `Authorization: Bearer <token>` value. The scheme is case-insensitive
/// (RFC 9110, section 11.1) and may be followed by several spaces (RFC 6750: `1*SP`).
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer";
    let (scheme, rest) = value.split_at_checked(SCHEME.len())?;
    if !scheme.eq_ignore_ascii_case(SCHEME) || rest.first() != Some(&b' ') {
        return None;
    }
    let token = rest.trim_ascii_start();
    (!token.is_empty()).then_some(token)
}

/// `401` for a `/api/` request without an accepted `Authorization: Bearer` token.
pub fn refusal<B>(tokens: &ApiTokens, request: &Request<B>) -> Option<ApiError> {
    if tokens.is_empty() || !request.uri().path().starts_with("/api/") {
        return None;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| bearer_token(value.as_bytes()));
    match presented {
        Some(token) if tokens.accepts(token) => None,
        _ => Some(ErrorCode::Unauthorized.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET_DIGEST: &str =
        "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";

    #[test]
    fn plain_and_hashed_tokens_are_both_accepted() {
        let tokens = ApiTokens::parse(&format!("alpha, {SECRET_DIGEST}")).unwrap();
        assert!(tokens.accepts(b"alpha"));
        assert!(tokens.accepts(b"secret"));
        assert!(!tokens.accepts(b"beta"));
        assert!(!tokens.accepts(b""));
    }

    #[test]
    fn the_scheme_is_case_insensitive_and_may_be_followed_by_several_spaces() {
        assert_eq!(bearer_token(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"BEARER   abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"Bearerabc"), None);
        assert_eq!(bearer_token(b"Bearer "), None);
        assert_eq!(bearer_token(b"Basic abc"), None);
        assert_eq!(bearer_token(b"Bear"), None);
    }

    #[test]
    fn an_empty_list_turns_authentication_off() {
        assert!(ApiTokens::parse(" , ").unwrap().is_empty());
    }

    #[test]
    fn a_malformed_digest_is_a_configuration_error() {
        assert!(ApiTokens::parse("sha256:abc").is_err());
        assert!(ApiTokens::parse(&format!("{}zz", &SECRET_DIGEST[..69])).is_err());
    }
}

//! Identifiers. Wallets and operations are named by UUIDs the client may choose, which is
//! what makes every write safe to retry.

use std::fmt;
use uuid::Uuid;

/// Names a wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WalletId(Uuid);

/// Names an operation. A client that picks it can retry without applying twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OperationId(Uuid);

macro_rules! uuid_newtype {
    ($name:ident) => {
        impl $name {
            /// A new id, time-ordered (UUID version 7): ids the service makes one after another
            /// sort together, so that the database inserts them next to each other in its
            /// indexes rather than all over them.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_hyphenated(s).map(Self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str(IdVisitor).map(Self)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }
    };
}

/// Why a text is not an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be a UUID in its hyphenated form, e.g. 6f1d6c1e-6a43-4c55-9a55-6b1ad1d7c001")]
pub struct InvalidId;

/// Only the hyphenated spelling (8-4-4-4-12 hex digits, either case). The braced, `urn:uuid:`
/// and 32-digit spellings that `Uuid::try_parse` also takes would give one wallet several
/// URLs and one operation several ids in logs; of all its spellings, only this one is 36
/// characters long.
fn parse_hyphenated(text: &str) -> Result<Uuid, InvalidId> {
    if text.len() != 36 {
        return Err(InvalidId);
    }
    Uuid::try_parse(text).map_err(|_| InvalidId)
}

/// Reads an id from a JSON string without copying it.
struct IdVisitor;

impl serde::de::Visitor<'_> for IdVisitor {
    type Value = Uuid;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a UUID in its hyphenated form")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Uuid, E> {
        parse_hyphenated(text).map_err(E::custom)
    }
}

uuid_newtype!(WalletId);
uuid_newtype!(OperationId);

/// Namespace for the ids of transfers' incoming sides (a fixed, random UUID).
const INCOMING_SIDE_NAMESPACE: Uuid = Uuid::from_u128(0x8e3b_61d2_47c9_4f0a_b5e8_19c4_d27a_6f31);

impl OperationId {
    /// The id of the destination's history entry of the transfer named `self`. The source's
    /// entry takes the transfer's own id; deriving the other (UUID v5) keeps both under the
    /// primary key that guards the one id namespace, with nothing more to store.
    pub fn incoming_side(self) -> OperationId {
        OperationId(Uuid::new_v5(&INCOMING_SIDE_NAMESPACE, self.0.as_bytes()))
    }
}

/// A client's `Idempotency-Key` header: 1 to 255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

/// Namespace for operation ids derived from idempotency keys (a fixed, random UUID).
const KEY_NAMESPACE: Uuid = Uuid::from_u128(0x5d0c_3f7e_2a41_4b8e_9c6d_0e1f_7a2b_3c4d);

impl IdempotencyKey {
    pub fn parse(raw: &[u8]) -> Result<Self, &'static str> {
        if raw.is_empty() || raw.len() > 255 {
            return Err("Idempotency-Key must be 1 to 255 characters");
        }
        if !raw.iter().all(|b| (0x20..=0x7e).contains(b)) {
            return Err("Idempotency-Key must be printable ASCII");
        }
        Ok(Self(String::from_utf8_lossy(raw).into_owned()))
    }

    /// The operation id a key stands for. Deriving it (UUID v5) instead of storing a second
    /// unique column means one uniqueness rule covers both ways of naming an operation.
    pub fn operation_id(&self) -> OperationId {
        OperationId(Uuid::new_v5(&KEY_NAMESPACE, self.0.as_bytes()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_key_accepts_printable_ascii_up_to_255() {
        assert!(IdempotencyKey::parse(b"order-42 retry#1").is_ok());
        assert!(IdempotencyKey::parse(&[b'k'; 255]).is_ok());
        assert!(IdempotencyKey::parse(b"").is_err());
        assert!(IdempotencyKey::parse(&[b'k'; 256]).is_err());
        assert!(IdempotencyKey::parse(b"tab\there").is_err());
        assert!(IdempotencyKey::parse("caf\u{e9}".as_bytes()).is_err());
    }

    #[test]
    fn equal_keys_name_the_same_operation_and_different_keys_do_not() {
        let a = IdempotencyKey::parse(b"a").unwrap();
        let b = IdempotencyKey::parse(b"b").unwrap();
        assert_eq!(
            a.operation_id(),
            IdempotencyKey::parse(b"a").unwrap().operation_id()
        );
        assert_ne!(a.operation_id(), b.operation_id());
    }

    #[test]
    fn wallet_id_parses_only_hyphenated_uuids() {
        assert!("not-a-uuid".parse::<WalletId>().is_err());
        let id: WalletId = "0b6e2c9a-3f55-4a1e-9d3c-6f1e2d3c4b5a".parse().unwrap();
        assert_eq!(id.to_string(), "0b6e2c9a-3f55-4a1e-9d3c-6f1e2d3c4b5a");
        let upper: WalletId = "0B6E2C9A-3F55-4A1E-9D3C-6F1E2D3C4B5A".parse().unwrap();
        assert_eq!(upper, id);
        for other in [
            "{0b6e2c9a-3f55-4a1e-9d3c-6f1e2d3c4b5a}",
            "urn:uuid:0b6e2c9a-3f55-4a1e-9d3c-6f1e2d3c4b5a",
            "0b6e2c9a3f554a1e9d3c6f1e2d3c4b5a",
            "0b6e2c9a-3f55-4a1e-9d3c-6f1e2d3c4b5",
            "0b6e2c9a-3f55-4a1e-9d3c-6f1e2d3c4b5g",
        ] {
            assert_eq!(other.parse::<WalletId>(), Err(InvalidId), "{other}");
        }
    }

    #[test]
    fn ids_in_json_take_only_the_hyphenated_spelling() {
        let id: OperationId =
            serde_json::from_str("\"0b6e2c9a-3f55-4a1e-9d3c-6f1e2d3c4b5a\"").unwrap();
        assert_eq!(id.to_string(), "0b6e2c9a-3f55-4a1e-9d3c-6f1e2d3c4b5a");
        let braced = "\"{0b6e2c9a-3f55-4a1e-9d3c-6f1e2d3c4b5a}\"";
        assert!(serde_json::from_str::<OperationId>(braced).is_err());
        assert!(serde_json::from_str::<OperationId>("42").is_err());
    }
}

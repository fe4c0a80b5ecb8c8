//! The wallet's vocabulary: identifiers, money and the rule that decides every operation.
//!
//! Everything here is pure (no I/O), so it can be tested exhaustively and reused by any
//! storage or transport.

mod ids;
mod money;
mod operation;
mod wallet;

pub use ids::{IdempotencyKey, InvalidId, OperationId, WalletId};
pub use money::{Amount, Balance, MAX_MONEY, MoneyError};
pub use operation::{
    OperationKind, OperationRecord, OperationRequest, OperationStatus, RejectReason,
};
pub use wallet::Wallet;

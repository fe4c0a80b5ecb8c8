//! The wallet's vocabulary: identifiers, money and the rules that decide every operation,
//! transfer and hold.
//!
//! Everything here is pure (no I/O), so it can be tested exhaustively and reused by any
//! storage or transport.

mod hold;
mod ids;
mod money;
mod operation;
mod transfer;
mod wallet;

pub use hold::{
    ExceedsHold, HoldAction, HoldDecision, HoldRecord, HoldStatus, HoldTerms, Pending, Refused,
    Resolved,
};
pub use ids::{IdempotencyKey, InvalidId, OperationId, WalletId};
pub use money::{Amount, Balance, MAX_MONEY, MoneyError};
pub use operation::{
    OperationKind, OperationRecord, OperationRequest, OperationStatus, RejectReason, TransferLeg,
};
pub use transfer::{SameWallet, TransferRecord, TransferRequest};
pub use wallet::{Funds, HeldExceedsBalance, Wallet};

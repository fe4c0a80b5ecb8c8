-- Transfers. A transfer is one record of its own (the thing a client named and the event
-- stream will publish) and one history entry on each wallet it touched.
--
-- Its source-side history entry takes the transfer's id, so that the primary key of
-- operations keeps guarding the one id namespace: an id that named a deposit cannot name a
-- transfer, and the reverse, even when the two are decided by different writers at once.
-- The destination's entry takes an id derived from the transfer's.

ALTER TABLE operations
    ADD COLUMN transfer_id            uuid,
    ADD COLUMN counterparty_wallet_id uuid,
    DROP CONSTRAINT operations_kind,
    ADD CONSTRAINT operations_kind
        CHECK (kind IN ('DEPOSIT', 'WITHDRAW', 'TRANSFER_OUT', 'TRANSFER_IN')),
    ADD CONSTRAINT operations_transfer
        CHECK ((kind IN ('TRANSFER_OUT', 'TRANSFER_IN'))
               = (transfer_id IS NOT NULL AND counterparty_wallet_id IS NOT NULL));

-- Rejected transfers are stored too, so that a retry replays the rejection. Balances are
-- each wallet's right after the transfer (unchanged when rejected).
CREATE TABLE transfers (
    id              uuid PRIMARY KEY,
    from_wallet_id  uuid NOT NULL,
    to_wallet_id    uuid NOT NULL,
    amount          bigint NOT NULL,
    status          text NOT NULL,
    reason          text,
    from_balance    bigint NOT NULL,
    to_balance      bigint NOT NULL,
    idempotency_key text,
    created_at      timestamptz NOT NULL,
    CONSTRAINT transfers_distinct_wallets CHECK (from_wallet_id <> to_wallet_id),
    CONSTRAINT transfers_amount_range CHECK (amount BETWEEN 1 AND 9007199254740991),
    CONSTRAINT transfers_status CHECK (status IN ('APPLIED', 'REJECTED')),
    CONSTRAINT transfers_reason CHECK ((status = 'REJECTED') = (reason IS NOT NULL)),
    CONSTRAINT transfers_balance_range
        CHECK (from_balance BETWEEN 0 AND 9007199254740991
               AND to_balance BETWEEN 0 AND 9007199254740991)
);

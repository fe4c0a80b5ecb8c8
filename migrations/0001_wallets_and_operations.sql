-- Money is stored in integer minor units. 9007199254740991 (2^53 - 1) is the largest
-- amount or balance the API accepts, so every value round-trips through any JSON client.

CREATE TABLE wallets (
    id         uuid PRIMARY KEY,
    balance    bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT wallets_balance_range CHECK (balance BETWEEN 0 AND 9007199254740991)
);

-- Every operation the ledger decided, applied or rejected. Rejections are stored too, so
-- that a retry with the same id replays the rejection instead of trying again.
-- wallet_id has no foreign key on purpose: the only writer inserts operations for wallets
-- it holds locked, and a foreign key would run one extra lookup per inserted row on the
-- hottest statement of the service.
CREATE TABLE operations (
    id              uuid PRIMARY KEY,
    seq             bigint GENERATED ALWAYS AS IDENTITY,
    wallet_id       uuid NOT NULL,
    kind            text NOT NULL,
    amount          bigint NOT NULL,
    status          text NOT NULL,
    reason          text,
    balance_after   bigint NOT NULL,
    idempotency_key text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT operations_kind CHECK (kind IN ('DEPOSIT', 'WITHDRAW')),
    CONSTRAINT operations_amount_range CHECK (amount BETWEEN 1 AND 9007199254740991),
    CONSTRAINT operations_status CHECK (status IN ('APPLIED', 'REJECTED')),
    CONSTRAINT operations_reason CHECK ((status = 'REJECTED') = (reason IS NOT NULL)),
    CONSTRAINT operations_balance_range CHECK (balance_after BETWEEN 0 AND 9007199254740991)
);

-- History is read newest first, one wallet at a time, by keyset on seq.
CREATE INDEX operations_wallet_seq ON operations (wallet_id, seq DESC);

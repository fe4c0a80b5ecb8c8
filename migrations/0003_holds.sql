-- Holds: money reserved by a pending withdrawal or transfer until it is confirmed, voided or
-- expires. A wallet keeps its posted balance and the part of it that pending holds reserve;
-- what is available is the difference, and nothing may take more than that.

ALTER TABLE wallets
    ADD COLUMN held bigint NOT NULL DEFAULT 0,
    ADD CONSTRAINT wallets_held_range CHECK (held BETWEEN 0 AND balance);

-- Every history entry records what was available after it. A hold's entries name it: the
-- entry that placed it (or the refused request that asked for it) carries its own id, the
-- entry that confirmed, voided or expired it carries the hold's.
ALTER TABLE operations
    ADD COLUMN available_after bigint,
    ADD COLUMN hold_id         uuid,
    ADD COLUMN expires_at      timestamptz;
UPDATE operations SET available_after = balance_after;
ALTER TABLE operations
    ALTER COLUMN available_after SET NOT NULL,
    ADD CONSTRAINT operations_available_range
        CHECK (available_after BETWEEN 0 AND balance_after),
    DROP CONSTRAINT operations_status,
    ADD CONSTRAINT operations_status
        CHECK (status IN ('APPLIED', 'REJECTED', 'PENDING', 'VOIDED', 'EXPIRED')),
    ADD CONSTRAINT operations_hold
        CHECK (status NOT IN ('PENDING', 'VOIDED', 'EXPIRED') OR hold_id IS NOT NULL);

-- A pending transfer's record is the answer to its request and keeps status PENDING; the
-- hold tells what became of it.
ALTER TABLE transfers
    ADD COLUMN from_available bigint,
    ADD COLUMN to_available   bigint,
    ADD COLUMN pending        boolean NOT NULL DEFAULT false,
    ADD COLUMN expires_at     timestamptz;
UPDATE transfers SET from_available = from_balance, to_available = to_balance;
ALTER TABLE transfers
    ALTER COLUMN from_available SET NOT NULL,
    ALTER COLUMN to_available SET NOT NULL,
    DROP CONSTRAINT transfers_status,
    ADD CONSTRAINT transfers_status CHECK (status IN ('APPLIED', 'REJECTED', 'PENDING')),
    ADD CONSTRAINT transfers_pending CHECK (pending OR (status <> 'PENDING' AND expires_at IS NULL));

-- One row per hold placed, changed only by the transaction that holds its source wallet's
-- lock: that is what makes a confirmation, a void and an expiry exclude each other.
CREATE TABLE holds (
    id               uuid PRIMARY KEY,
    wallet_id        uuid NOT NULL,
    to_wallet_id     uuid,
    amount           bigint NOT NULL,
    status           text NOT NULL,
    confirmed_amount bigint,
    expires_at       timestamptz,
    created_at       timestamptz NOT NULL,
    resolved_at      timestamptz,
    CONSTRAINT holds_amount_range CHECK (amount BETWEEN 1 AND 9007199254740991),
    CONSTRAINT holds_status CHECK (status IN ('PENDING', 'CONFIRMED', 'VOIDED', 'EXPIRED')),
    CONSTRAINT holds_confirmed
        CHECK ((status = 'CONFIRMED') = (confirmed_amount IS NOT NULL)
               AND confirmed_amount BETWEEN 1 AND amount),
    CONSTRAINT holds_resolved CHECK ((status = 'PENDING') = (resolved_at IS NULL))
);

-- The expiry sweep reads pending holds by due time only.
CREATE INDEX holds_due ON holds (expires_at) WHERE status = 'PENDING' AND expires_at IS NOT NULL;

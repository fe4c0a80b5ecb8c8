-- A wallet's history is read newest first, which a B-tree serves as well scanned backwards.
-- Kept in ascending order, the index takes each new operation at the end of its wallet's
-- entries, where a busy wallet's inserts land on the same last page (for the busiest
-- wallets, the index's rightmost page, which PostgreSQL reaches without descending the
-- tree), instead of in front of them, where every insert descends the tree and pages split
-- in half.
DROP INDEX operations_wallet_seq;
CREATE INDEX operations_wallet_seq ON operations (wallet_id, seq);

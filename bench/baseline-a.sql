-- Baseline A: the classic design at its best, one transaction per operation on one hot
-- wallet, driven by pgbench straight against PostgreSQL (no HTTP, no service). The row lock
-- of the UPDATE serialises the clients; every commit is durable.
-- Run with -M prepared (or extended): pgbench sends :wallet as a bound parameter then; in
-- its simple mode a variable is pasted into the SQL unquoted, which a UUID cannot survive.
\set amount random(1, 100)
BEGIN;
UPDATE wallets SET balance = balance + :amount, updated_at = now()
  WHERE id = :wallet RETURNING balance AS after, balance - held AS available \gset
INSERT INTO operations (id, wallet_id, kind, amount, status, balance_after, available_after)
  VALUES (gen_random_uuid(), :wallet, 'DEPOSIT', :amount, 'APPLIED', :after, :available);
COMMIT;

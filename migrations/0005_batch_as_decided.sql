-- A writer may decide a batch on the funds it remembers from its own last commit instead of
-- locking and reading them first (ledger/writer.rs). Its one statement then locks those
-- wallets itself and checks that they still hold what it remembered, and that every hold it
-- resolves was still pending; when either is no longer true (another instance wrote
-- meanwhile), it calls this, and the error undoes the whole statement. The constraint named
-- is how the service tells this error from any other.
CREATE FUNCTION batch_not_as_decided() RETURNS int8 LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the batch was decided on funds or holds that changed meanwhile'
        USING ERRCODE = 'serialization_failure', CONSTRAINT = 'batch_as_decided';
END
$$;

-- wrk script for bench/run.sh: every request is a deposit of 1 into the one wallet given as
-- the script's argument (`wrk ... -s bench/deposit.lua URL/api/v1/wallet -- WALLET_ID`), with
-- no operationId and no Idempotency-Key, so that the service names each one itself.
function init(args)
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
    wrk.body = string.format(
        '{"walletId": "%s", "operationType": "DEPOSIT", "amount": 1}', args[1])
end

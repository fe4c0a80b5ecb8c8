"""Places holds of 1 on one wallet, for bench/run.sh's expiry measurement: funds the wallet,
then sends `--count` pending withdrawals over one keep-alive connection, their timeouts spread
evenly from the first to the last number of seconds given. Fails on any answer but 200."""

import argparse
import http.client
import json
import urllib.parse
import uuid


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--wallet", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--timeouts", type=int, nargs=2, metavar=("FIRST", "LAST"), required=True)
    args = parser.parse_args()

    url = urllib.parse.urlsplit(args.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)

    def post(body):
        conn.request("POST", "/api/v1/wallet", json.dumps(body),
                     {"Content-Type": "application/json"})
        answer = conn.getresponse()
        text = answer.read()
        if answer.status != 200:
            raise SystemExit(f"place_holds: {answer.status} {text!r}")

    post({"walletId": args.wallet, "operationType": "DEPOSIT", "amount": args.count})
    first, last = args.timeouts
    for i in range(args.count):
        timeout = first + (last - first) * i // max(args.count - 1, 1)
        post({"walletId": args.wallet, "operationType": "WITHDRAW", "amount": 1,
              "operationId": str(uuid.uuid4()), "pending": True, "timeoutSeconds": timeout})


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Turns the raw results of bench/run.sh into Markdown tables: measured numbers and their ratios,
no judgement (what they mean is written by hand in docs/benchmarks.md). Writes RESULTS/tables.md
and, with --doc, puts the same tables between the markers below in that file, leaving the
hand-written text around them as it is. Standard library only."""

import argparse
import glob
import json
import os
import re
import sys
from dataclasses import dataclass, replace

BEGIN, END = "<!-- tables:begin -->", "<!-- tables:end -->"
# Drawn beside the doc by `wallet-loadtest --plot` during the hot-wallet run.
CHART = "benchmarks-hot-wallet.svg"
# name in the results folder: label in the tables
SCENARIOS = {
    "baseline-b": "B: service, --max-batch 1, one hot wallet",
    "ceiling-c": "C: service, GET /health/live (no database)",
    "hot-wallet": "ours: one hot wallet",
    "many-wallets": "ours: 10,000 wallets, uniform",
    "reads": "ours: balance reads, 1,000 wallets",
    "open-loop": "ours: open loop 1000/s, one hot wallet",
}
# bench/run.sh runs each of these as `<name>-c<clients>`, and the hot wallet at 64 clients as
# `hot-wallet-c64`, for the ratio at the same number of clients. name: label, and the ratio to
# the hot wallet each one is meant to reach
AGAINST_HOT_WALLET = {
    "transfers-hot-merchant": ("ours: transfers, hot merchant, 1,000 payers", 0.5),
    "transfers-hot-payer": ("ours: transfers, hot payer, 1,000 payees", 0.5),
    "transfers-random": ("ours: transfers, random pairs, 10,000 wallets", 0.5),
    "transfers-hot-merchant-source": (
        "ours: transfers, hot merchant, each on its source's writer", 0.5),
    "capture-hot-wallet": ("ours: payments, authorise + confirm pairs, one hot wallet", 0.4),
}
# Batches and the single-request path, all at 64 clients (wrk: 64 connections). name in the
# results folder: label; bench/run.sh runs the single-request ones at 64 clients as
# `<name>-c64` when its usual count is another.
AT_64 = {
    "batch-hot-wallet-c64": "ours: 100-item batches, one hot wallet, 64 clients",
    "batch-many-wallets-c64": "ours: 100-item batches, 10,000 wallets, 64 clients",
    "hot-wallet": "ours: one hot wallet, 64 clients",
    "many-wallets": "ours: 10,000 wallets, uniform, 64 clients",
    "wrk-bare-http-c64": "wrk: bare HTTP, GET /nope answered 404, 64 connections",
    "wrk-hot-wallet-c64": "wrk: deposits into one hot wallet, 64 connections",
}


@dataclass(frozen=True)
class LoadReport:
    """What the tables use of a `wallet-loadtest --json` report: its keys are read here only."""

    started_at: float  # Unix seconds
    duration: float  # seconds of load asked for
    concurrency: int | None  # None in open loop
    ok_per_second: float
    ok_items_per_second: float  # operations: a batch's items each
    errors: int  # answers other than the documented ones, timeouts, transport errors
    p50_ms: float
    p99_ms: float
    consistent: bool

    @classmethod
    def read(cls, path):
        with open(path) as f:
            report = json.load(f)
        try:
            summary, latency = report["summary"], report["summary"]["latencyMs"]
            return cls(
                started_at=summary["startedAtUnixMs"] / 1000,
                duration=summary["durationSeconds"],
                concurrency=summary["concurrency"],
                ok_per_second=summary["okPerSecond"],
                ok_items_per_second=summary["okItemsPerSecond"],
                errors=summary["requests"] - summary["ok"],
                p50_ms=latency["p50"],
                p99_ms=latency["p99"],
                consistent=report["verification"]["consistent"],
            )
        except KeyError as key:  # written by an older or newer wallet-loadtest
            sys.exit(f"{path}: no {key} in this wallet-loadtest report")


@dataclass(frozen=True)
class Ledger:
    """The batches committed during a load, from the service's metrics just before and after."""

    seconds: float
    batches: float
    mean_batch: float
    commit_ms: float
    buckets: list  # (upper bound, batches up to it), ascending


@dataclass(frozen=True)
class Run:
    """One row of the tables, from pgbench or from wallet-loadtest."""

    label: str
    per_second: float
    p50: float
    p99: float
    errors: int
    consistent: bool | None  # None: pgbench checks nothing
    cpu: dict  # average cores per group ("service", "postgres", "load", "other") and "idle"
    ledger: Ledger | None = None
    ops_per_second: float | None = None  # a batch's items each; None: as per_second

    @property
    def ops(self):
        """Operations answered per second: a batch's items each."""
        return self.per_second if self.ops_per_second is None else self.ops_per_second

    def micros(self, group):
        """CPU time of a group per answered operation, in µs."""
        cores = self.cpu.get(group)
        return None if cores is None or not self.ops else 1e6 * cores / self.ops


def read_samples(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def cpu_split(samples):
    """Average cores per group over the samples, weighted by interval length."""
    total = sum(s["end"] - s["start"] for s in samples)
    split = {}
    for s in samples:
        for group, cores in [*s["cores"].items(), ("idle", s["idle"])]:
            split[group] = split.get(group, 0.0) + cores * (s["end"] - s["start"]) / total
    return split


def ledger_delta(samples, start, end):
    scraped = [s for s in samples if s.get("metrics")]
    if not scraped:
        return None
    before = min(scraped, key=lambda s: abs(s["end"] - start))
    after = min(scraped, key=lambda s: abs(s["end"] - end))
    a, b = (dict(re.findall(r"(?m)^(\S+) (\S+)$", s["metrics"])) for s in (before, after))
    delta = {key: float(value) - float(a.get(key, 0)) for key, value in b.items()}
    batches = delta.get("wallet_ledger_batch_size_count", 0.0)
    if after["end"] <= before["end"] or batches <= 0:
        return None
    bucket = re.compile(r'wallet_ledger_batch_size_bucket\{le="([^"]+)"\}')
    commits = delta["wallet_ledger_commit_duration_seconds_count"]
    return Ledger(
        seconds=after["end"] - before["end"],
        batches=batches,
        mean_batch=delta["wallet_ledger_batch_size_sum"] / batches,
        commit_ms=1000 * delta["wallet_ledger_commit_duration_seconds_sum"] / max(commits, 1),
        buckets=sorted((float(m[1]), n) for k, n in delta.items() if (m := bucket.fullmatch(k))),
    )


def pgbench_run(results, clients):
    prefix = os.path.join(results, f"baseline-a-c{clients}")
    with open(f"{prefix}.txt") as f:
        text = f.read()
    latencies = []  # µs, the third field of pgbench's per-transaction log
    for path in glob.glob(f"{prefix}.log.*"):
        with open(path) as log:
            latencies.extend(int(line.split()[2]) for line in log if line.strip())
    latencies.sort()

    def ms(quantile):
        return latencies[min(int(quantile * len(latencies)), len(latencies) - 1)] / 1000

    tps = float(re.search(r"(?m)^tps = ([\d.]+)", text)[1])
    failed = re.search(r"(?m)^number of failed transactions: (\d+)", text)
    cpu = cpu_split(read_samples(f"{prefix}.samples.jsonl"))
    errors = int(failed[1]) if failed else 0
    return Run(f"A: pgbench, {clients} clients", tps, ms(0.50), ms(0.99), errors, None, cpu)


def loadtest_run(results, name, label):
    load = LoadReport.read(os.path.join(results, f"{name}.json"))
    start, end = load.started_at, load.started_at + load.duration
    samples = read_samples(os.path.join(results, f"{name}.samples.jsonl"))
    # The samples within the load, with half a second of slack; for a load shorter than the
    # sampling interval, the ones that overlap it.
    inside = [s for s in samples if s["start"] >= start - 0.5 and s["end"] <= end + 0.5]
    inside = inside or [s for s in samples if s["end"] > start and s["start"] < end]
    run = Run(label, load.ok_per_second, load.p50_ms, load.p99_ms, load.errors,
              load.consistent, cpu_split(inside), ledger_delta(samples, start, end),
              load.ok_items_per_second)
    return load, run


def wrk_ms(text, percent):
    """A percentile of wrk's `--latency` distribution, in ms."""
    value, unit = re.search(rf"(?m)^\s+{percent}%\s+([\d.]+)(us|ms|s)$", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


def wrk_run(results, name, label, status_is_error):
    """A wrk run from its text output. wrk tells 2xx and 3xx answers from the rest and no
    more: with `status_is_error` the rest are errors, left out of the ok rate; socket errors
    are errors in any case. wrk checks no ledger."""
    path = os.path.join(results, f"{name}.txt")
    with open(path) as f:
        text = f.read()
    try:
        requests = int(re.search(r"(?m)^\s+(\d+) requests in ", text)[1])
        per_second = float(re.search(r"(?m)^Requests/sec:\s+([\d.]+)$", text)[1])
        p50, p99 = wrk_ms(text, 50), wrk_ms(text, 99)
    except TypeError:  # re.search found nothing
        sys.exit(f"{path}: not the output of a `wrk --latency` run")
    other = re.search(r"(?m)^\s+Non-2xx or 3xx responses: (\d+)$", text)
    other = int(other[1]) if other and status_is_error else 0
    sockets = re.search(r"(?m)^\s+Socket errors: (.*)$", text)
    errors = other + (sum(map(int, re.findall(r"\d+", sockets[1]))) if sockets else 0)
    samples = read_samples(os.path.join(results, f"{name}.samples.jsonl"))
    # wrk does nothing but the load: every sample is within it.
    ledger = samples and ledger_delta(samples, samples[0]["start"], samples[-1]["end"])
    ok = per_second * (requests - other) / requests if requests else 0.0
    return Run(label, ok, p50, p99, errors, None, cpu_split(samples), ledger or None)


def hot_label(clients):
    return f"ours: one hot wallet, {clients} clients"


def against_hot_wallet_rows(results, hot_wallet):
    """The runs compared with the hot wallet, with their ratio to it and its target: at each
    number of clients they ran with, the hot wallet (ratio and target None), then each run."""
    hot_load, hot_run = hot_wallet
    hot = {hot_load.concurrency: hot_run}
    if os.path.exists(os.path.join(results, "hot-wallet-c64.json")):
        hot[64] = loadtest_run(results, "hot-wallet-c64", hot_label(64))[1]
    found = [path for name in AGAINST_HOT_WALLET
             for path in glob.glob(os.path.join(results, f"{name}-c*.json"))]
    rows = []
    for clients in sorted({int(re.search(r"-c(\d+)\.json$", path)[1]) for path in found}):
        reference = hot[clients]
        rows.append((replace(reference, label=hot_label(clients)), None, None))
        for name, (label, target) in AGAINST_HOT_WALLET.items():
            label = f"{label}, {clients} clients"
            run = loadtest_run(results, f"{name}-c{clients}", label)[1]
            rows.append((run, run.per_second / reference.per_second, target))
    return rows


def at_64(results, name, label):
    """A run at 64 clients: `<name>-c64` when bench/run.sh's usual count is another, or else
    the run itself (under its usual label, as in the other tables) if it ran at 64; None if
    neither is there."""
    if os.path.exists(os.path.join(results, f"{name}-c64.json")):
        return loadtest_run(results, f"{name}-c64", label)[1]
    if os.path.exists(os.path.join(results, f"{name}.json")):
        load, run = loadtest_run(results, name, SCENARIOS.get(name, label))
        return run if load.concurrency == 64 else None
    return None


def batch_rows(results, loads):
    """The runs of the batches-and-single-requests comparison, and its ratios, each with its
    target: (runs, [(comparison, numerator, denominator, ratio format, target)]); None when the
    run had no batches."""
    if not os.path.exists(os.path.join(results, "batch-hot-wallet-c64.json")):
        return None
    runs = {}
    for name, label in AT_64.items():
        if name.startswith("wrk-"):
            runs[name] = wrk_run(results, name, label, status_is_error=name != "wrk-bare-http-c64")
        else:
            runs[name] = at_64(results, name, label)
            if runs[name] is None:
                sys.exit(f"{results}: no run of {name} at 64 clients")
    (hot_load, hot), (_, ceiling) = loads["hot-wallet"], loads["ceiling-c"]
    n = hot_load.concurrency
    ratios = [
        ("100-item batches / single requests, one hot wallet, 64 clients",
         runs["batch-hot-wallet-c64"], runs["hot-wallet"], "x", 3.0),
        ("100-item batches / single requests, 10,000 wallets, 64 clients",
         runs["batch-many-wallets-c64"], runs["many-wallets"], "x", 3.0),
        ("wrk: hot-wallet deposits / bare HTTP, 64 connections",
         runs["wrk-hot-wallet-c64"], runs["wrk-bare-http-c64"], "%", 0.4),
        (f"one hot wallet / ceiling C (GET /health/live), {n} clients", hot, ceiling, "%", 0.5),
        ("10,000 wallets / one hot wallet, 64 clients",
         runs["many-wallets"], runs["hot-wallet"], "x", 1.0),
    ]
    if n != 64:
        # wrk at the usual count as well, beside the project's load tool there.
        for name in ("wrk-bare-http", "wrk-hot-wallet"):
            label = AT_64[f"{name}-c64"].replace("64 connections", f"{n} connections")
            runs[f"{name}-c{n}"] = wrk_run(results, f"{name}-c{n}", label,
                                           status_is_error=name != "wrk-bare-http")
        ratios.append((f"wrk: hot-wallet deposits / bare HTTP, {n} connections",
                       runs[f"wrk-hot-wallet-c{n}"], runs[f"wrk-bare-http-c{n}"], "%", 0.5))
        ratios.append((f"10,000 wallets / one hot wallet, {n} clients",
                       loads["many-wallets"][1], hot, "x", 1.0))
    return list(runs.values()), ratios


def histogram_bound(path, name, quantile):
    """The upper bound of the Prometheus histogram bucket that holds `quantile` of `name`'s
    observations, in ms: the quantile is at most that (None without observations)."""
    with open(path) as f:
        text = f.read()
    buckets = sorted(
        (float("inf") if le == "+Inf" else float(le), float(count))
        for le, count in re.findall(rf'(?m)^{name}_bucket{{le="([^"]+)"}} (\S+)$', text))
    if not buckets or buckets[-1][1] == 0:
        return None
    wanted = quantile * buckets[-1][1]
    return next(1000 * le for le, count in buckets if count >= wanted)


def events_rows(results, hot_run):
    """The events-on runs (consumed, then with no queue bound), each with its ratio to the hot
    wallet (events off), its publish lag (p50, p99) and its check of the stream (None without a
    consumer); an empty list when the run had no events scenario."""
    rows = []
    for name, label in [("events-hot-wallet", "events on, consumed by the load tool"),
                        ("events-unconsumed-hot-wallet", "events on, no queue bound")]:
        path = os.path.join(results, f"{name}.json")
        if not os.path.exists(path):
            continue
        run = loadtest_run(results, name, f"{SCENARIOS['hot-wallet']}, {label}")[1]
        with open(path) as f:
            stream = json.load(f).get("events")
        metrics = os.path.join(results, f"{name}.metrics.txt")
        lag = [histogram_bound(metrics, "wallet_events_publish_lag_seconds", q)
               for q in (0.5, 0.99)]
        rows.append((run, run.per_second / hot_run.per_second, lag, stream))
    return rows


def ratio_cells(value, style, target):
    """A ratio and its target, as a percentage or as a multiple."""
    if style == "%":
        return f"{100 * value:.0f}%", f"≥ {100 * target:.0f}%"
    return f"{value:.2f}x", f"≥ {target:.1f}x"


def table(header, rows, align=None):
    align = align or "l" + "r" * (len(header) - 1)
    lines = [header, [{"l": "---", "r": "---:"}[a] for a in align], *rows]
    return "\n".join("| " + " | ".join(str(cell) for cell in line) + " |" for line in lines)


def cell(value, fmt, missing="-"):
    return missing if value is None else format(value, fmt)


def batch_sizes(ledger):
    """Prometheus' cumulative buckets as one row per size range that had batches."""
    rows, low, below = [], 1, 0.0
    for le, upto in ledger.buckets:
        if upto > below:
            high = "more" if le == float("inf") else int(le)
            share = f"{100 * (upto - below) / ledger.batches:.0f}%"
            rows.append([low if low == high else f"{low}-{high}", f"{upto - below:.0f}", share])
        low, below = (int(le) + 1 if le != float("inf") else low), upto
    return rows


def key_values(path, fields=2):
    """The `|`-separated lines bench/run.sh records: `key|value` about the machine and
    PostgreSQL, or `fields` columns."""
    with open(path) as f:
        return [line.rstrip("\n").split("|", fields - 1) for line in f if "|" in line]


def tables(results, doc_dir):
    found = glob.glob(os.path.join(results, "baseline-a-c*.txt"))
    clients = sorted(int(re.search(r"-c(\d+)\.txt$", path)[1]) for path in found)
    pgbench = [pgbench_run(results, n) for n in clients]
    peak = max(pgbench, key=lambda run: run.per_second)
    loads = {name: loadtest_run(results, name, label) for name, label in SCENARIOS.items()}
    r = {name: run for name, (_, run) in loads.items()}
    hot_load = loads["hot-wallet"][0]
    runs = [replace(peak, label=f"{peak.label} (peak)"), *r.values()]
    machine = key_values(os.path.join(results, "machine.txt"))
    postgres = key_values(os.path.join(results, "postgres.txt"))

    out = [(f"Measured by `bench/run.sh`, finished {dict(machine)['run finished']}: "
            f"{hot_load.duration:g} s per measurement, closed loops with {hot_load.concurrency} "
            "clients unless a table says otherwise.")]
    verdict = {None: "n/a", True: "CONSISTENT", False: "DISCREPANCIES"}
    out += ["## Results", table(
        ["scenario", "ok req/s", "p50 ms", "p99 ms", "errors", "ledger check"],
        [[x.label, f"{x.per_second:.0f}", f"{x.p50:.2f}", f"{x.p99:.2f}", x.errors,
          verdict[x.consistent]] for x in runs], "lrrrrl")]

    hot, c = r["hot-wallet"].per_second, r["ceiling-c"].per_second
    out += ["## Ratios", table(["throughput", "ratio"], [
        ["one hot wallet / baseline B", f"{hot / r['baseline-b'].per_second:.1f}x"],
        ["one hot wallet / baseline A peak", f"{hot / peak.per_second:.1f}x"],
        ["one hot wallet / ceiling C", f"{100 * hot / c:.0f}%"],
        ["10,000 wallets / one hot wallet", f"{r['many-wallets'].per_second / hot:.1f}x"],
        ["balance reads / ceiling C", f"{100 * r['reads'].per_second / c:.0f}%"],
    ])]
    if rows := against_hot_wallet_rows(results, loads["hot-wallet"]):
        out += ["## Transfers and payments", (
            "Transfers alone (`--mix transfer=100`), and payments alone (`--mix capture=100`: a "
            "hold, then its confirmation or void, the two requests counted as one, so their "
            "ok req/s are payments/s and their latency the pair's); at each number of clients, "
            "the one hot wallet first, as the reference."), table(
            ["scenario", "ok req/s", "p50 ms", "p99 ms", "errors", "ledger check",
             "/ one hot wallet", "target"],
            [[x.label, f"{x.per_second:.0f}", f"{x.p50:.2f}", f"{x.p99:.2f}", x.errors,
              verdict[x.consistent], "-" if ratio is None else f"{ratio:.2f}x",
              "-" if target is None else f"≥ {target:.1f}x"]
             for x, ratio, target in rows], "lrrrrlrr")]
        # In the CPU tables too, but the hot wallet at the usual count only once.
        runs += [x for x, _, _ in rows if x.label != hot_label(hot_load.concurrency)]

    if batches := batch_rows(results, loads):
        batch_runs, ratios = batches
        out += ["## Batches and the single-request path", (
            f"At 64 clients, and at {hot_load.concurrency} where a row says so (wrk: 64 "
            f"connections and {hot_load.concurrency}). A batch is one `POST /api/v1/batches` "
            "of 100 deposits and withdrawals (`--batch-size 100`), each decided on its own as "
            "if sent alone: ok ops/s counts its items answered as documented, its latency is "
            "the whole batch's. wrk sends one request over and over and checks nothing but its "
            "status: the bare HTTP stack is a `GET /nope` answered `404`, the deposits "
            "`bench/deposit.lua`, each of 1 into one wallet, without ids; its rows have no ledger "
            "check, and only socket errors (and for the deposits, answers other than 2xx) count "
            "as errors."), table(
            ["scenario", "ok req/s", "ok ops/s", "p50 ms", "p99 ms", "errors", "ledger check"],
            [[x.label, f"{x.per_second:.0f}", f"{x.ops:.0f}", f"{x.p50:.2f}", f"{x.p99:.2f}",
              x.errors, verdict[x.consistent]] for x in batch_runs], "lrrrrrl"),
            "In operations per second (a batch's items each):", table(
            ["comparison", "ops/s", "against ops/s", "ratio", "target"],
            [[label, f"{a.ops:.0f}", f"{b.ops:.0f}", *ratio_cells(a.ops / b.ops, style, target)]
             for label, a, b, style, target in ratios], "lrrrr")]
        # In the CPU tables too, but the runs already there only once.
        runs += [x for x in batch_runs if x.label not in {y.label for y in runs}]

    if events := events_rows(results, r["hot-wallet"]):
        ms = lambda value: "-" if value is None else f"{value:.0f}"  # noqa: E731
        bound = lambda value: "-" if value is None else f"≤ {value:g}"  # noqa: E731
        out += ["## Events", (
            "The hot wallet again with `--events-amqp-url`: every change published to the local "
            "RabbitMQ (on the same two cores) with publisher confirms; first with wallet-loadtest "
            "consuming the stream (a queue of its own bound to every event) and checking it "
            "against what it was answered, then with no queue bound, where the broker confirms "
            "each event and drops it. Publish lag is the service's, from a change to the "
            "broker's confirm (the bucket of its histogram that holds the quantile); stream lag "
            "is the consumer's, from a change to its arrival."), table(
            ["scenario", "ok req/s", "p50 ms", "p99 ms", "errors", "ledger check"],
            [[x.label, f"{x.per_second:.0f}", f"{x.p50:.2f}", f"{x.p99:.2f}", x.errors,
              verdict[x.consistent]] for x in [r["hot-wallet"], *(e[0] for e in events)]],
            "lrrrrl")]
        measures = []
        for run, ratio, (lag50, lag99), stream in events:
            label = run.label.split(", ", 1)[1]
            measures += [[f"{label} / events off", f"{ratio:.2f}x", "≥ 0.8x"],
                         [f"{label}: publish lag p50 / p99, ms",
                          f"{bound(lag50)} / {bound(lag99)}", "p99 ≤ 1000"]]
            if stream:
                measures += [
                    [f"{label}: stream lag p50 / p99 / max, ms",
                     f"{ms(stream['lagP50Ms'])} / {ms(stream['lagP99Ms'])} / "
                     f"{ms(stream['lagMaxMs'])}", "-"],
                    [f"{label}: events received / duplicates",
                     f"{stream['received']} / {stream['duplicates']}", "-"],
                    [f"{label}: missing / unexpected / out of order",
                     f"{stream['missing']} / {stream['unexpected']} / {stream['outOfOrder']}",
                     "0 / 0 / 0"]]
            runs.append(run)
        out += [table(["measure", "value", "target"], measures, "lrr")]

    expiry = os.path.join(results, "expiry-lateness.txt")
    if os.path.exists(expiry):
        out += ["## Hold expiry", (
            "Holds of 1 with timeouts of a few seconds, each set on a wallet of its own; how "
            "long after its `expiresAt` each was expired, from the holds table."), table(
            ["service", "expired / placed", "p50 ms late", "p99 ms late", "max ms late"],
            [[label, f"{expired} / {placed}", p50, p99, worst]
             for label, expired, placed, p50, p99, worst in key_values(expiry, 6)])]

    if doc_dir and os.path.exists(os.path.join(doc_dir, CHART)):
        out += ["## Chart: one hot wallet",
                f"![throughput and latency per second, one hot wallet]({CHART})"]

    out += ["## Baseline A by client count", table(
        ["clients", "tps", "p50 ms", "p99 ms", "failed"],
        [[n, f"{x.per_second:.0f}", f"{x.p50:.2f}", f"{x.p99:.2f}", x.errors]
         for n, x in zip(clients, pgbench)])]

    groups = ["service", "postgres", "load", "other", "idle", "broker"]
    out += ["## CPU", "Cores in use during each load, on average (the broker: RabbitMQ, "
            "in the events run only):", table(
        ["scenario", "service", "postgres", "load tool", "other", "idle", "broker"],
        [[x.label, *(cell(x.cpu.get(g), ".2f") for g in groups)] for x in runs])]
    out += [("CPU time per answered request (a batch's items each), and the ledger's batches "
             "during the load:"), table(
        ["scenario", "service µs/req", "postgres µs/req", "load tool µs/req", "broker µs/req",
         "ops per batch", "batches/s", "ms per batch transaction"],
        [[x.label, *(cell(x.micros(g), ".0f") for g in ("service", "postgres", "load", "broker")),
          cell(x.ledger and x.ledger.mean_batch, ".1f", "n/a"),
          cell(x.ledger and x.ledger.batches / x.ledger.seconds, ".0f", "n/a"),
          cell(x.ledger and x.ledger.commit_ms, ".2f", "n/a")] for x in runs])]
    if ledger := r["hot-wallet"].ledger:
        out += ["Operations per committed batch during the hot-wallet load:",
                table(["operations", "batches", "share"], batch_sizes(ledger))]

    postgres = [["PostgreSQL" if key == "version" else key, value] for key, value in postgres]
    out += ["## Machine", table(["", ""], machine + postgres, "ll")]
    with open(os.path.join(results, "commands.txt")) as f:
        out += ["## Commands, in the order they ran", f"```sh\n{f.read().rstrip()}\n```"]
    return "\n\n".join(out) + "\n"


# The Citus comparison (`BENCH_CITUS=1 bench/run.sh`): each scenario as `plain-<name>` and
# `citus-<name>`.
CITUS_SCENARIOS = {
    "hot-wallet": "one hot wallet",
    "many-wallets": "10,000 wallets, uniform",
    "transfers-random": "transfers, random pairs of 10,000 wallets",
}


def citus_tables(results):
    machine = dict(key_values(os.path.join(results, "machine.txt")))
    runs = {}
    for name, label in CITUS_SCENARIOS.items():
        for target in ("plain", "citus"):
            load, run = loadtest_run(results, f"{target}-{name}", label)
            runs[target, name] = run
    verdict = {True: "CONSISTENT", False: "DISCREPANCIES"}
    out = [(f"Measured by `BENCH_CITUS=1 bench/run.sh`, finished {machine['run finished']}: "
            f"{load.duration:g} s per measurement, {load.concurrency} clients, the service "
            "with its defaults (4 writers); plain: PostgreSQL 15 on 127.0.0.1:5432; Citus: a "
            "coordinator and two workers, each its own PostgreSQL 15 on this machine.")]
    rows = []
    for name, label in CITUS_SCENARIOS.items():
        plain, citus = runs["plain", name], runs["citus", name]
        rows.append([label, f"{plain.ops:.0f}", f"{citus.ops:.0f}",
                     f"{citus.ops / plain.ops:.2f}x", f"{plain.p99:.1f}", f"{citus.p99:.1f}",
                     plain.errors + citus.errors,
                     f"{verdict[plain.consistent]} / {verdict[citus.consistent]}"])
    out += ["## Throughput", table(
        ["scenario", "plain ops/s", "Citus ops/s", "Citus / plain", "plain p99 ms",
         "Citus p99 ms", "errors", "ledger check"], rows, "lrrrrrrl")]

    def per_op(run, groups):
        cores = sum(v for group, v in run.cpu.items() if groups(group))
        return cell(1e6 * cores / run.ops if run.ops else None, ".0f")

    rows = []
    for name, label in CITUS_SCENARIOS.items():
        plain, citus = runs["plain", name], runs["citus", name]
        rows.append([label, per_op(plain, lambda g: g == "service"),
                     per_op(plain, lambda g: g == "postgres"),
                     per_op(citus, lambda g: g == "service"),
                     per_op(citus, lambda g: g == "coordinator"),
                     per_op(citus, lambda g: g.startswith("worker-")),
                     f"{100 * citus.cpu.get('idle', 0) / (os.cpu_count() or 1):.0f}%"])
    out += ["## CPU per operation (µs)", (
        "Where each operation's CPU went, from /proc (`bench/sample.py`): the service, "
        "PostgreSQL (plain), the coordinator and the two workers together (Citus); the "
        "machine's idle share during the Citus run last."), table(
        ["scenario", "plain: service", "plain: PostgreSQL", "Citus: service",
         "Citus: coordinator", "Citus: workers", "Citus: idle"], rows, "lrrrrrr")]
    with open(os.path.join(results, "commands.txt")) as f:
        out += ["## Commands, in the order they ran", f"```sh\n{f.read().rstrip()}\n```"]
    return "\n\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", required=True, help="the folder bench/run.sh filled")
    parser.add_argument("--doc", help="Markdown file whose generated block to replace")
    parser.add_argument("--citus", action="store_true",
                        help="the results of BENCH_CITUS=1 bench/run.sh")
    args = parser.parse_args()
    if args.citus:
        text = citus_tables(args.results)
    else:
        text = tables(args.results, args.doc and os.path.dirname(os.path.abspath(args.doc)))
    with open(os.path.join(args.results, "tables.md"), "w") as f:
        f.write(text)
    print(text)
    if args.doc:
        with open(args.doc) as f:
            doc = f.read()
        start, end = doc.find(BEGIN), doc.find(END)
        if start < 0 or end < start:
            sys.exit(f"{args.doc}: no {BEGIN} ... {END} block to replace")
        with open(args.doc, "w") as f:
            f.write(f"{doc[:start]}{BEGIN}\n\n{text}\n{doc[end:]}")
        print(f"wrote {args.results}/tables.md and the tables of {args.doc}")


if __name__ == "__main__":
    main()

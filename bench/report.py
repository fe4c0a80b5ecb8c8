#!/usr/bin/env python3
"""Reads the raw results of bench/run.sh, prints the comparison table with its ratios and
writes docs/benchmarks.md. Standard library only."""

import argparse
import datetime
import glob
import json
import os
import platform
import re
import sys

CORES = os.cpu_count() or 1

# name in bench/results, label in the tables
SCENARIOS = [
    ("baseline-b", "B: service, --max-batch 1, one hot wallet"),
    ("ceiling-c", "C: service, GET /health/live (no database)"),
    ("hot-wallet", "ours: one hot wallet"),
    ("many-wallets", "ours: 10,000 wallets, uniform"),
    ("reads", "ours: balance reads, 1,000 wallets"),
    ("open-loop", "ours: open loop 1000/s, one hot wallet"),
]


# --- reading ------------------------------------------------------------------------------


def read_pgbench(results, clients):
    """tps, failures, latency percentiles and the CPU samples of one pgbench run."""
    text = open(os.path.join(results, f"baseline-a-c{clients}.txt")).read()
    tps = float(re.search(r"^tps = ([\d.]+)", text, re.M).group(1))
    failed = re.search(r"^number of failed transactions: (\d+)", text, re.M)
    latencies = []
    for path in glob.glob(os.path.join(results, f"baseline-a-c{clients}.log.*")):
        with open(path) as log:
            # client_id transaction_no time_us script_no time_epoch time_us_part [...]
            latencies.extend(int(line.split()[2]) for line in log if line.strip())
    latencies.sort()
    return {
        "clients": clients,
        "tps": tps,
        "errors": int(failed.group(1)) if failed else 0,
        "transactions": len(latencies),
        "p50": percentile(latencies, 0.50) / 1000.0,
        "p99": percentile(latencies, 0.99) / 1000.0,
        "samples": read_samples(os.path.join(results, f"baseline-a-c{clients}.samples.jsonl")),
    }


def percentile(sorted_values, quantile):
    if not sorted_values:
        return float("nan")
    index = min(int(quantile * len(sorted_values)), len(sorted_values) - 1)
    return sorted_values[index]


def read_samples(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def read_loadtest(results, name):
    with open(os.path.join(results, f"{name}.json")) as f:
        report = json.load(f)
    summary = report["summary"]
    start = summary["startedAtUnixMs"] / 1000.0
    end = start + summary["durationSeconds"]
    samples = read_samples(os.path.join(results, f"{name}.samples.jsonl"))
    return {
        "name": name,
        "summary": summary,
        "verification": report["verification"],
        "throughput": summary["okPerSecond"],
        "p50": summary["latencyMs"]["p50"],
        "p99": summary["latencyMs"]["p99"],
        "errors": summary["requests"] - summary["ok"],
        "consistent": report["verification"]["consistent"],
        "cpu": cpu_split(in_window(samples, start, end)),
        "ledger": ledger_delta(samples, start, end),
    }


def in_window(samples, start, end):
    """The samples that lie within the load (half a second of slack at either end); when the
    load is shorter than the sampling interval, the ones that overlap it."""
    inside = [s for s in samples if s["start"] >= start - 0.5 and s["end"] <= end + 0.5]
    return inside or [s for s in samples if s["end"] > start and s["start"] < end]


def cpu_split(samples):
    """Average cores per group, weighted by interval length."""
    total = sum(s["end"] - s["start"] for s in samples)
    if not total:
        return None
    split = {}
    for sample in samples:
        weight = (sample["end"] - sample["start"]) / total
        for group, cores in sample["cores"].items():
            split[group] = split.get(group, 0.0) + cores * weight
        split["idle"] = split.get("idle", 0.0) + sample["idle"] * weight
    split["seconds"] = total
    return split


def prometheus_values(text):
    values = {}
    for line in (text or "").splitlines():
        if line.startswith("#") or " " not in line:
            continue
        key, value = line.rsplit(" ", 1)
        try:
            values[key] = float(value)
        except ValueError:
            pass
    return values


def ledger_delta(samples, start, end):
    """Batches committed during the load: their number, mean size, size buckets and mean
    commit time, from the metrics scraped just before and just after it."""
    scraped = [s for s in samples if s.get("metrics")]
    if not scraped:
        return None
    before = min(scraped, key=lambda s: abs(s["end"] - start))
    after = min(scraped, key=lambda s: abs(s["end"] - end))
    if after["end"] <= before["end"]:
        return None
    a, b = prometheus_values(before["metrics"]), prometheus_values(after["metrics"])

    def delta(key):
        return b.get(key, 0.0) - a.get(key, 0.0)

    batches = delta("wallet_ledger_batch_size_count")
    if batches <= 0:
        return None
    buckets = []
    for key in b:
        match = re.fullmatch(r'wallet_ledger_batch_size_bucket\{le="([^"]+)"\}', key)
        if match:
            buckets.append((float(match.group(1)), delta(key)))
    buckets.sort()
    return {
        "seconds": after["end"] - before["end"],
        "batches": batches,
        "operations": delta("wallet_ledger_batch_size_sum"),
        "mean_batch": delta("wallet_ledger_batch_size_sum") / batches,
        "commit_ms": 1000.0 * delta("wallet_ledger_commit_duration_seconds_sum")
        / max(delta("wallet_ledger_commit_duration_seconds_count"), 1),
        "retries": delta("wallet_ledger_retries_total"),
        "buckets": buckets,
    }


def read_machine(results):
    with open("/proc/cpuinfo") as f:
        models = re.findall(r"^model name\s*:\s*(.+)$", f.read(), re.M)
    with open("/proc/meminfo") as f:
        mem_kb = int(re.search(r"^MemTotal:\s+(\d+)", f.read(), re.M).group(1))
    postgres = {}
    with open(os.path.join(results, "postgres.txt")) as f:
        for line in f:
            if "|" in line:
                key, value = line.rstrip("\n").split("|", 1)
                postgres[key] = value

    def loadavg(name):
        path = os.path.join(results, name)
        return open(path).read().split()[:3] if os.path.exists(path) else ["?"] * 3

    return {
        "cpus": CORES,
        "model": models[0] if models else platform.processor() or "unknown",
        "memory_gib": mem_kb / 1024 / 1024,
        "kernel": platform.release(),
        "postgres": postgres,
        "loadavg_start": loadavg("loadavg-start.txt"),
        "loadavg_end": loadavg("loadavg-end.txt"),
    }


# --- judging ------------------------------------------------------------------------------


def targets(a_peak, runs):
    b, c = runs["baseline-b"], runs["ceiling-c"]
    hot, many, reads, open_loop = (
        runs["hot-wallet"],
        runs["many-wallets"],
        runs["reads"],
        runs["open-loop"],
    )

    def ratio(x, y):
        return x / y if y else float("inf")

    open_ok = open_loop["errors"] == 0 and open_loop["consistent"]
    return [
        ("one hot wallet vs baseline B", ratio(hot["throughput"], b["throughput"]), 10.0, "x"),
        ("one hot wallet vs baseline A peak", ratio(hot["throughput"], a_peak["tps"]), 3.0, "x"),
        ("one hot wallet vs ceiling C", ratio(hot["throughput"], c["throughput"]), 0.40, "%"),
        ("10,000 wallets vs one hot wallet", ratio(many["throughput"], hot["throughput"]), 1.0, "x"),
        ("balance reads vs ceiling C", ratio(reads["throughput"], c["throughput"]), 0.60, "%"),
        ("open loop 1000/s: p99", open_loop["p99"], 10.0, "ms"),
        ("open loop 1000/s: errors, CONSISTENT", 0 if open_ok else 1, 0, "ok"),
    ]


def passed(value, required, unit):
    if unit == "ms":
        return value <= required
    if unit == "ok":
        return value == 0
    return value >= required


def show(value, unit):
    if unit == "x":
        return f"{value:.1f}x"
    if unit == "%":
        return f"{100 * value:.0f}%"
    if unit == "ms":
        return f"{value:.2f} ms"
    return "yes" if value == 0 else "no"


def need(required, unit):
    return {"x": f">= {required:g}x", "%": f">= {100 * required:.0f}%", "ms": f"<= {required:g} ms"}.get(
        unit, "0 errors, CONSISTENT"
    )


# --- writing ------------------------------------------------------------------------------


def table(header, rows, align=None):
    align = align or ["l"] + ["r"] * (len(header) - 1)
    marks = {"l": "---", "r": "---:"}
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks[a] for a in align) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def plain(header, rows):
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    fmt = lambda row: "  ".join(  # noqa: E731
        str(cell).ljust(w) if i == 0 else str(cell).rjust(w) for i, (cell, w) in enumerate(zip(row, widths))
    )
    return "\n".join([fmt(header), fmt(["-" * w for w in widths])] + [fmt(row) for row in rows])


def cores(split, group):
    """Cores used by a group; "-" if none of its processes ran (no service for pgbench)."""
    if not split:
        return "n/a"
    return f"{split[group]:.2f}" if group in split else "-"


def micros_per_request(split, group, throughput):
    if not split or not throughput:
        return "n/a"
    return f"{1e6 * split[group] / throughput:.0f}" if group in split else "-"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--duration", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--database", required=True)
    args = parser.parse_args()
    results = args.results

    clients = sorted(
        int(m.group(1))
        for path in glob.glob(os.path.join(results, "baseline-a-c*.txt"))
        if (m := re.search(r"baseline-a-c(\d+)\.txt$", path))
    )
    pgbench = [read_pgbench(results, c) for c in clients]
    a_peak = max(pgbench, key=lambda run: run["tps"])
    a_peak["cpu"] = cpu_split(a_peak["samples"])
    runs = {name: read_loadtest(results, name) for name, _ in SCENARIOS}
    hot = runs["hot-wallet"]

    main_rows = [
        [
            f"A: pgbench, one transaction per operation (peak: {a_peak['clients']} clients)",
            f"{a_peak['tps']:.0f}",
            f"{a_peak['p50']:.2f}",
            f"{a_peak['p99']:.2f}",
            a_peak["errors"],
            "n/a",
        ]
    ]
    for name, label in SCENARIOS:
        run = runs[name]
        main_rows.append(
            [
                label,
                f"{run['throughput']:.0f}",
                f"{run['p50']:.2f}",
                f"{run['p99']:.2f}",
                run["errors"],
                "CONSISTENT" if run["consistent"] else "DISCREPANCIES",
            ]
        )
    main_header = ["scenario", "ok req/s", "p50 ms", "p99 ms", "errors", "ledger check"]

    judged = targets(a_peak, runs)
    target_rows = [
        [what, show(value, unit), need(required, unit), "PASS" if passed(value, required, unit) else "MISS"]
        for what, value, required, unit in judged
    ]
    target_header = ["target", "measured", "required", "result"]

    print()
    print(plain(main_header, main_rows))
    print()
    print(plain(target_header, target_rows))
    print()

    machine = read_machine(results)
    pg = machine["postgres"]
    finished = os.path.join(results, "loadavg-end.txt")
    when = os.path.getmtime(finished) if os.path.exists(finished) else None
    now = datetime.datetime.fromtimestamp(when, datetime.timezone.utc) if when else datetime.datetime.now(datetime.timezone.utc)
    now = now.strftime("%Y-%m-%d %H:%M UTC")
    with open(os.path.join(results, "commands.txt")) as f:
        commands = f.read().rstrip("\n")

    cpu_rows = []
    per_request_rows = []
    a_label = f"A: pgbench, {a_peak['clients']} clients"
    everything = [(a_label, a_peak["cpu"], a_peak["tps"], None)] + [
        (label, runs[name]["cpu"], runs[name]["throughput"], runs[name]["ledger"]) for name, label in SCENARIOS
    ]
    for label, split, throughput, ledger in everything:
        cpu_rows.append(
            [
                label,
                cores(split, "service"),
                cores(split, "postgres"),
                cores(split, "load"),
                cores(split, "other"),
                cores(split, "idle"),
            ]
        )
        per_request_rows.append(
            [
                label,
                micros_per_request(split, "service", throughput),
                micros_per_request(split, "postgres", throughput),
                micros_per_request(split, "load", throughput),
                f"{ledger['mean_batch']:.1f}" if ledger else "n/a",
                f"{ledger['batches'] / ledger['seconds']:.0f}" if ledger else "n/a",
                f"{ledger['commit_ms']:.2f}" if ledger else "n/a",
            ]
        )

    a_rows = [
        [run["clients"], f"{run['tps']:.0f}", f"{run['p50']:.2f}", f"{run['p99']:.2f}", run["errors"]]
        for run in pgbench
    ]

    bucket_rows = []
    if hot["ledger"]:
        previous_le, previous_count = 0.0, 0.0
        for le, count in hot["ledger"]["buckets"]:
            share = count - previous_count
            if share > 0:
                low = int(previous_le) + 1
                high = "more" if le == float("inf") else int(le)
                span = f"{low}" if low == high else f"{low}-{high}"
                bucket_rows.append([span, f"{share:.0f}", f"{100 * share / hot['ledger']['batches']:.0f}%"])
            previous_le, previous_count = le, count

    text = f"""# Benchmarks

Generated by `bench/run.sh` on {now}, {args.duration} s per measurement, closed loops with
{args.concurrency} clients. Rerun it to refresh every number on this page; raw results land in
`bench/results/`, which is not committed.
{noise_note(everything)}
**PostgreSQL ran with `fsync=on` and `synchronous_commit=on` in every measurement** (the script
checks both and refuses to run otherwise): every acknowledged operation was durable. The load
tool, the service and PostgreSQL **share the same {machine['cpus']} cores**; nothing ran on
another machine.

## Results

{table(main_header, main_rows, ["l", "r", "r", "r", "r", "l"])}

Throughput counts answers the API documents (`200`, or `409 INSUFFICIENT_FUNDS` for a
withdrawal); "errors" is every other answer, timeout or transport failure. "Ledger check" is
`wallet-loadtest`'s verification after the run: every balance equals its initial deposit plus
the acknowledged deposits minus the acknowledged withdrawals, and sampled histories hold
exactly the acknowledged operations. Latency is measured by the load tool (pgbench's own
per-transaction log for baseline A); in the open loop it counts from each request's scheduled
start, so a stall cannot hide.

## Targets

{table(target_header, target_rows, ["l", "r", "r", "l"])}

## Chart: one hot wallet

![throughput and latency per second, one hot wallet](benchmarks-hot-wallet.svg)

Throughput (top) and latency (bottom) per second of the hot-wallet run, drawn by
`wallet-loadtest --plot`; the dashed line marks the end of the load.

## Baseline A by client count

One transaction per operation (`UPDATE wallets ... RETURNING` plus `INSERT INTO operations`,
`bench/baseline-a.sql`) on one row, straight from pgbench with prepared statements: no HTTP,
no service. The row lock serialises the clients, so more clients add waiting, not
throughput. The peak is the figure compared against.

{table(["clients", "tps", "p50 ms", "p99 ms", "failed"], a_rows)}

## What bounds it

CPU use during each measured load, sampled once a second from `/proc` (`bench/sample.py`), in
cores ({machine['cpus']} = the whole machine). "postgres" is the backends serving
`{args.database}` and PostgreSQL's own background processes (WAL writer, checkpointer);
"other" is everything else that ran, including other people's work on a shared machine; a
high "other" means the run was disturbed.

{table(["scenario", "service", "postgres", "load tool", "other", "idle"], cpu_rows)}

The same as CPU time per answered request, with the ledger's batches during the load (from
the service's Prometheus metrics: `wallet_ledger_batch_size`,
`wallet_ledger_commit_duration_seconds`):

{table(["scenario", "service µs/req", "postgres µs/req", "load tool µs/req", "ops per batch", "batches/s", "ms per batch transaction"], per_request_rows)}

{reading(runs, a_peak, machine, args.concurrency)}
"""
    if bucket_rows:
        text += f"""
Batch sizes during the hot-wallet load (operations per committed transaction, Prometheus
buckets):

{table(["operations", "batches", "share"], bucket_rows)}
"""
    if os.path.exists(os.path.join(results, "hot-wallet-flamegraph.svg")):
        text += """
A CPU flamegraph of the service on one hot wallet, from an extra run after the measured ones
(`BENCH_PROFILE=1`), is in `bench/results/hot-wallet-flamegraph.svg`.
"""
    text += f"""
## Machine

| | |
|---|---|
| CPU | {machine['cpus']} x {machine['model']} |
| memory | {machine['memory_gib']:.1f} GiB |
| kernel | Linux {machine['kernel']} |
| load average at start / end | {' '.join(machine['loadavg_start'])} / {' '.join(machine['loadavg_end'])} |
| PostgreSQL | {pg.get('version', '?')} |
| fsync | {pg.get('fsync', '?')} |
| synchronous_commit | {pg.get('synchronous_commit', '?')} |
| wal_sync_method | {pg.get('wal_sync_method', '?')} |
| full_page_writes | {pg.get('full_page_writes', '?')} |
| commit_delay | {pg.get('commit_delay', '?')} |
| shared_buffers | {pg.get('shared_buffers', '?')} |
| max_connections | {pg.get('max_connections', '?')} |
| checkpoint_timeout / max_wal_size | {pg.get('checkpoint_timeout', '?')} / {pg.get('max_wal_size', '?')} |

## How it was measured

- One script, one run: `bench/run.sh` builds the release binaries, recreates the database
  `{args.database}` (the service's migrations create the schema), then runs every
  measurement below in turn, one at a time. Each starts after a `CHECKPOINT`.
- Only one service runs at a time, started for its measurement and stopped (by pid) after.
  It runs with its built-in defaults (4 writer shards, batches of up to 1000 operations, a
  pool of 8 read connections; no `config.env`, no `WALLET_*` variables), with one exception:
  `RUST_LOG=warn`. Logging every request is a per-request cost that an operator would also
  turn down for a benchmark; the Prometheus metrics stay on. Baseline B adds `--max-batch 1`:
  the same code with one transaction per request.
- `wallet-loadtest` runs on one thread, keeps keep-alive connections, creates and funds its
  own fresh wallets (initial balance 1,000,000; amounts 1-100), sends every write with an
  `operationId`, and must exit 0: no 5xx, no timeout, no transport error, ledger CONSISTENT.
  The script fails otherwise.
- Ceiling C is the same load tool against `GET /health/live` of the same service, which does
  no database work: the cost of HTTP, routing and metrics alone on this machine.

Exact commands, in the order they ran (ports were free ones picked at run time; the service
was started with `env -i` from `bench/results/`, so that no `config.env` or caller's variable
changed its defaults):

```sh
{commands}
```
"""
    with open(args.out, "w") as f:
        f.write(text)
    print(f"wrote {args.out}")
    return 0


def noise_note(everything):
    """A warning when other processes took a noticeable share of the cores while we measured."""
    others = [split["other"] for _, split, _, _ in everything if split and "other" in split]
    if not others or max(others) < 0.2:
        return ""
    return (
        f"\n**This run shared the machine with other work:** processes outside the benchmark "
        f"used {sum(others) / len(others):.2f} cores on average during the measurements (up to "
        f"{max(others):.2f}; see [What bounds it](#what-bounds-it)), so every figure here is "
        f"lower and noisier than a quiet machine would give.\n"
    )


def cpu_per_request(run):
    """CPU time of service, PostgreSQL and load tool per answered request, in µs."""
    split = run["cpu"]
    if not split or not run["throughput"]:
        return None
    used = sum(split.get(group, 0.0) for group in ("service", "postgres", "load"))
    return 1e6 * used / run["throughput"]


def cpu_bounds(runs):
    """What the ratios to C could at most be if every scenario were bound by the CPU that
    service, PostgreSQL and load tool need per request on the same cores."""
    c = cpu_per_request(runs["ceiling-c"])
    parts = []
    for name, label, target in (
        ("hot-wallet", "a write on one hot wallet", 0.40),
        ("reads", "a balance read", 0.60),
    ):
        cost = cpu_per_request(runs[name])
        if c and cost:
            parts.append(
                f"{label} costs {cost:.0f} µs, {cost / c:.1f} times a liveness check's {c:.0f} µs, "
                f"so on the same cores it can reach at most {100 * c / cost:.0f}% of C "
                f"(target {100 * target:.0f}%)"
            )
    many, hot = runs["many-wallets"], runs["hot-wallet"]
    text = ""
    if parts:
        text = (
            "**CPU per request** (service, PostgreSQL and load tool together): "
            + "; ".join(parts)
            + ". The load tool's and PostgreSQL's shares are paid on the same cores as the "
            "service's, so a quieter machine raises every throughput but not these ceilings."
        )
    if many["ledger"] and hot["ledger"] and many["cpu"] and hot["cpu"]:
        text += (
            f"\n\n**10,000 wallets.** The load spreads over the writer shards: "
            f"{many['ledger']['mean_batch']:.1f} operations per batch and "
            f"{many['ledger']['batches'] / many['ledger']['seconds']:.0f} transactions per "
            f"second, against {hot['ledger']['mean_batch']:.1f} and "
            f"{hot['ledger']['batches'] / hot['ledger']['seconds']:.0f} on one wallet; "
            f"PostgreSQL spent {micros_per_request(many['cpu'], 'postgres', many['throughput'])} "
            f"µs per operation against "
            f"{micros_per_request(hot['cpu'], 'postgres', hot['throughput'])} (a row locked and "
            f"updated per wallet instead of once per batch, and more commits)."
        )
    return text


def reading(runs, a_peak, machine, concurrency):
    """Sentences that read the numbers above. They are computed from them, so they stay true
    when the script is rerun."""
    paragraphs = []
    hot, c = runs["hot-wallet"], runs["ceiling-c"]
    split, ledger = hot["cpu"], hot["ledger"]
    if split:
        busy = machine["cpus"] - split.get("idle", 0.0)
        line = (
            f"**One hot wallet.** The machine was {busy:.2f} of {machine['cpus']} cores busy "
            f"(service {split.get('service', 0):.2f}, PostgreSQL {split.get('postgres', 0):.2f}, "
            f"load tool {split.get('load', 0):.2f}, other processes {split.get('other', 0):.2f}). "
        )
        other = split.get("other", 0.0)
        if busy >= 0.9 * machine["cpus"] and other >= 0.2:
            line += (
                f"The cores were saturated, {other:.2f} of them by other processes: this run "
                f"measured a shared machine, and its throughput is lower than the same "
                f"machine would give when quiet."
            )
        elif busy >= 0.9 * machine["cpus"]:
            line += "The cores were saturated: CPU bounded this run."
        else:
            line += (
                "The cores were not saturated: requests spent part of their time waiting for "
                "a commit to reach the disk, not for CPU."
            )
        paragraphs.append(line)
    if ledger:
        mean_ms = hot["summary"]["latencyMs"]["mean"]
        buckets = ledger["buckets"]
        singles = buckets[0][1] / ledger["batches"] if buckets and buckets[0][0] == 1 else 0.0
        line = (
            f"Batches held {ledger['mean_batch']:.1f} operations on average: "
            f"{ledger['batches'] / ledger['seconds']:.0f} transactions per second of "
            f"{ledger['commit_ms']:.2f} ms each, one durable commit per batch instead of one per "
            f"request (baseline A peaked at {a_peak['tps']:.0f} commits per second). "
            f"In a closed loop, throughput is clients / mean latency: {concurrency} / "
            f"{mean_ms:.2f} ms = {concurrency / mean_ms * 1000:.0f}/s, and that mean latency is "
            f"as long as {mean_ms / ledger['commit_ms']:.1f} batch transactions."
        )
        if singles >= 0.2:
            line += (
                f" {100 * singles:.0f}% of the batches carried a single operation (buckets "
                "below): the writer takes what is queued the moment it is free, so while a big "
                "batch commits, the first client it answers sends again and becomes the next "
                "batch on its own; the others queue behind it. Batches alternate between one "
                "operation and the rest of the clients."
            )
        c_rate = c["throughput"]
        if c_rate:
            needed = concurrency / (0.4 * c_rate) * 1000
            line += (
                f" To reach 40% of ceiling C with {concurrency} clients, mean latency would have "
                f"to be {needed:.2f} ms"
            )
            line += (
                f", less than one batch transaction took in this run ({ledger['commit_ms']:.2f} "
                f"ms): every request waits for at least the commit of its own batch, so at this "
                f"concurrency the target needs faster commits, not only less CPU per request."
                if needed < ledger["commit_ms"]
                else "."
            )
        paragraphs.append(line)
    if c["cpu"] and c["throughput"]:
        service, load = c["cpu"].get("service", 0.0), c["cpu"].get("load", 0.0)
        line = (
            f"**Ceiling C.** HTTP alone cost {1e6 * (service + load) / c['throughput']:.0f} µs "
            f"of CPU per request, service and load tool together; the load tool (one thread) "
            f"used {load:.2f} cores."
        )
        if load >= 0.9:
            line += " Its thread was saturated: the load tool, not the service, set the ceiling."
        paragraphs.append(line)
        paragraphs.append(cpu_bounds(runs))
    return "\n\n".join(paragraphs) if paragraphs else "No CPU samples were taken."


if __name__ == "__main__":
    sys.exit(main())

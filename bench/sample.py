#!/usr/bin/env python3
"""Samples, once per interval, where the machine's CPU goes and (optionally) the service's
Prometheus metrics, until the watched process exits. One JSON object per line, so that
bench/report.py can cut out exactly the seconds of a measured load.

CPU is split into groups: the processes named with --role (the service, the load tool; a role
covers the process's descendants), "postgres": the PostgreSQL server given by --postmaster
(its backends for the bench database and its background processes: WAL writer, checkpointer,
autovacuum), and "other": everything else that ran, backends of other databases and other
PostgreSQL servers included, derived from /proc/stat so that short-lived processes (other
people's compilers) are counted too. Figures are in cores: 1.0 is one core busy for the whole
interval.
"""

import argparse
import json
import os
import re
import sys
import time
import urllib.request

TICKS = os.sysconf("SC_CLK_TCK")
# A PostgreSQL client backend's title: "postgres: 15/main: user db 127.0.0.1(5432) idle".
CLIENT_BACKEND = re.compile(r"\(\d+\)|\[local\]")


def machine_ticks():
    """(busy, idle) jiffies of all CPUs since boot."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return user + nice + system + irq + softirq + steal, idle + iowait


def process_ticks(pid):
    """(parent pid, utime + stime) of a process, all its threads included; None if it is
    gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    # The name may hold spaces and parentheses; the fields after it start behind the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[11]) + int(fields[12])


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def serves_another_database(pid, database):
    title = cmdline(pid)
    return bool(CLIENT_BACKEND.search(title)) and f" {database} " not in title


def scan(roles, database):
    """Ticks per pid, with the pid's group. A role covers its descendants too (a load tool
    run under `timeout` is the `timeout` process and its child)."""
    processes = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (ticks := process_ticks(int(entry))) is not None:
            processes[int(entry)] = ticks

    def role_of(pid):
        for _ in range(16):
            if pid in roles:
                return roles[pid]
            if pid not in processes or pid <= 1:
                return None
            pid = processes[pid][0]
        return None

    seen = {}
    for pid, (_, used) in processes.items():
        group = role_of(pid) or "other"
        if group == "postgres" and serves_another_database(pid, database):
            group = "other"  # someone else's work on the same server
        seen[pid] = (group, used)
    return seen


def scrape(url):
    """The ledger's metrics (batch sizes, commit times), cumulative since the service started."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    return "\n".join(line for line in text.splitlines() if line.startswith("wallet_ledger_"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="file to append samples to (JSON lines)")
    parser.add_argument("--until-pid", type=int, required=True, help="stop when it exits")
    parser.add_argument("--role", action="append", default=[], metavar="NAME=PID")
    parser.add_argument("--database", required=True, help="the bench database's name")
    parser.add_argument("--postmaster", type=int, help="pid of the PostgreSQL server")
    parser.add_argument("--metrics-url", help="Prometheus endpoint to scrape each interval")
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    roles = {args.postmaster: "postgres"} if args.postmaster else {}
    for role in args.role:
        name, pid = role.split("=", 1)
        roles[int(pid)] = name

    previous = scan(roles, args.database)
    previous_machine = machine_ticks()
    previous_time = time.time()
    with open(args.out, "a") as out:
        while os.path.exists(f"/proc/{args.until_pid}"):
            time.sleep(args.interval)
            now = time.time()
            current = scan(roles, args.database)
            machine = machine_ticks()
            seconds = now - previous_time
            cores = {}
            for pid, (group, used) in current.items():
                # A process first seen now started during the interval: all its ticks count.
                before = previous.get(pid, (group, 0))[1]
                cores[group] = cores.get(group, 0.0) + max(used - before, 0) / TICKS / seconds
            busy = (machine[0] - previous_machine[0]) / TICKS / seconds
            idle = (machine[1] - previous_machine[1]) / TICKS / seconds
            named = sum(v for g, v in cores.items() if g != "other")
            # Whatever ran and exited within the interval is only in the machine total; the
            # sampler's own few milliseconds per scan are in there too.
            cores["other"] = max(busy - named, 0.0)
            sample = {
                "start": previous_time,
                "end": now,
                "cores": {g: round(v, 3) for g, v in sorted(cores.items())},
                "busy": round(busy, 3),
                "idle": round(idle, 3),
            }
            if args.metrics_url:
                sample["metrics"] = scrape(args.metrics_url)
            out.write(json.dumps(sample) + "\n")
            out.flush()
            previous, previous_machine, previous_time = current, machine, now
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Merge benchmark JSON lines into one markdown table plus a ratios block.

Usage: table.py [FILE...]   (reads stdin when no file is given)

Each input line is one JSON object as printed by `walguard-peers` and by the
`bench_walguard` example: system, workload, synchronous, in_flight, writes,
seconds, throughput, p50_us, p99_us, max_us, runs. Lines that are not JSON
objects are reported on stderr and skipped. Standard library only.
"""

import json
import sys

FIELDS = {
    "system": str,
    "workload": str,
    "synchronous": str,
    "in_flight": int,
    "writes": int,
    "seconds": (int, float),
    "throughput": (int, float),
    "p50_us": (int, float),
    "p99_us": (int, float),
    "max_us": (int, float),
    "runs": int,
}

# Peers first, in the order the issue lists them; walguard rows after them.
PEER_ORDER = ["raw-per-insert", "raw-batched", "tokio-rusqlite"]
SYNC_ORDER = ["normal", "full"]


def read_rows(streams):
    rows = []
    for name, stream in streams:
        for lineno, line in enumerate(stream, 1):
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                print(f"table.py: {name}:{lineno}: not JSON, skipped: {line[:80]}", file=sys.stderr)
                continue
            if not isinstance(row, dict):
                print(f"table.py: {name}:{lineno}: not a JSON object, skipped", file=sys.stderr)
                continue
            bad = [k for k, t in FIELDS.items()
                   if k not in row or isinstance(row[k], bool) or not isinstance(row[k], t)]
            if bad:
                print(f"table.py: {name}:{lineno}: missing or mistyped {', '.join(bad)}, skipped",
                      file=sys.stderr)
                continue
            rows.append(row)
    return rows


def system_rank(system):
    if system in PEER_ORDER:
        return (0, PEER_ORDER.index(system), system)
    return (1, 0, system)


def sort_key(row):
    sync = row["synchronous"]
    sync_rank = SYNC_ORDER.index(sync) if sync in SYNC_ORDER else len(SYNC_ORDER)
    return (row["workload"], sync_rank, sync, row["in_flight"], system_rank(row["system"]))


def num(x, digits=0):
    return f"{x:,.{digits}f}"


def ratio(a, b):
    if not b:
        return "n/a"
    return f"{a / b:.2f}x"


def print_table(rows):
    print("| system | workload | synchronous | in flight | writes | runs "
          "| throughput (writes/s) | p50 (µs) | p99 (µs) | max (µs) |")
    print("|---|---|---|--:|--:|--:|--:|--:|--:|--:|")
    for r in sorted(rows, key=sort_key):
        print(f"| {r['system']} | {r['workload']} | {r['synchronous']} | {r['in_flight']} "
              f"| {r['writes']} | {r['runs']} | {num(r['throughput'])} "
              f"| {num(r['p50_us'], 1)} | {num(r['p99_us'], 1)} | {num(r['max_us'], 1)} |")


def find(rows, system, workload, sync, in_flight):
    for r in rows:
        if (r["system"], r["workload"], r["synchronous"], r["in_flight"]) == \
                (system, workload, sync, in_flight):
            return r
    return None


def print_ratios(rows):
    print("### Ratios")
    print()
    ours = sorted((r for r in rows if r["system"].startswith("walguard")), key=sort_key)
    if not ours:
        print("No walguard rows in this run: ratios skipped.")
        return
    print("Throughput ratio > 1: walguard is faster. Latency ratio < 1: walguard answers sooner.")
    print()
    print("| walguard system | synchronous | in flight | vs | throughput | p50 | p99 |")
    print("|---|---|--:|---|--:|--:|--:|")
    for r in ours:
        key = (r["workload"], r["synchronous"])
        peers = [
            ("tokio-rusqlite", find(rows, "tokio-rusqlite", *key, r["in_flight"])),
            # The ceiling runs at one in flight only: compare every level with it.
            ("raw-batched", find(rows, "raw-batched", *key, 1)),
        ]
        for name, p in peers:
            if p is None:
                cells = "no matching row | | "
            else:
                cells = (f"{ratio(r['throughput'], p['throughput'])} "
                         f"| {ratio(r['p50_us'], p['p50_us'])} | {ratio(r['p99_us'], p['p99_us'])}")
                if p["writes"] != r["writes"]:
                    name += f" (writes {p['writes']} vs {r['writes']}!)"
            print(f"| {r['system']} | {r['synchronous']} | {r['in_flight']} | {name} | {cells} |")


def main(argv):
    if any(a in ("-h", "--help") for a in argv[1:]):
        print(__doc__.strip())
        return 0
    streams = []
    try:
        if len(argv) > 1:
            for path in argv[1:]:
                with open(path, encoding="utf-8") as f:
                    streams.append((path, f.readlines()))
        else:
            streams.append(("<stdin>", sys.stdin.readlines()))
    except OSError as e:
        print(f"table.py: {e}", file=sys.stderr)
        return 2
    rows = read_rows(streams)
    if not rows:
        print("table.py: no benchmark rows to show", file=sys.stderr)
        return 1
    print_table(rows)
    print()
    print_ratios(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

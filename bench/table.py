#!/usr/bin/env python3
"""Merge benchmark JSON lines into one markdown table plus a ratios block.

Usage: table.py [FILE...]   (reads stdin when no file is given)

Each input line is one JSON object as printed by `walguard-peers` and by the
`bench_walguard` example: system, workload, synchronous, in_flight, writes,
seconds, throughput, p50_us, p99_us, max_us, runs, and optionally
cpu_us_per_write. Several lines of one configuration are several runs, in the
order they ran (bench/run.sh runs every system once per round). Lines that are not JSON
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
PEER_ORDER = ["raw-per-insert", "raw-batched", "tokio-rusqlite", "batching-writer"]
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


def key_of(row):
    return (row["system"], row["workload"], row["synchronous"], row["in_flight"])


def sort_key(key):
    system, workload, sync, in_flight = key
    sync_rank = SYNC_ORDER.index(sync) if sync in SYNC_ORDER else len(SYNC_ORDER)
    return (workload, sync_rank, sync, in_flight, system_rank(system))


def num(x, digits=0):
    return f"{x:,.{digits}f}"


def group_runs(rows):
    """Runs of each configuration, in the order they ran (run i of one
    configuration and run i of another ran in the same round)."""
    groups = {}
    for r in rows:
        groups.setdefault(key_of(r), []).append(r)
    return groups


def median_run(runs):
    """The median-throughput run (the lower middle one for an even count)."""
    ordered = sorted(runs, key=lambda r: r["throughput"])
    return ordered[(len(ordered) - 1) // 2]


def cpu(row):
    value = row.get("cpu_us_per_write")
    return value if isinstance(value, (int, float)) and value > 0 else None


def print_table(groups):
    print("| system | workload | synchronous | in flight | writes | runs "
          "| throughput (writes/s) | p50 (µs) | p99 (µs) | max (µs) | CPU per write (µs) |")
    print("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for key in sorted(groups, key=sort_key):
        runs = groups[key]
        r = median_run(runs)
        c = cpu(r)
        print(f"| {r['system']} | {r['workload']} | {r['synchronous']} | {r['in_flight']} "
              f"| {r['writes']} | {len(runs)} | {num(r['throughput'])} "
              f"| {num(r['p50_us'], 1)} | {num(r['p99_us'], 1)} | {num(r['max_us'], 1)} "
              f"| {num(c, 2) if c else 'n/a'} |")
    print()
    print("Each row is the run with the median throughput; its runs (writes/s, in the order they ran):")
    print()
    for key in sorted(groups, key=sort_key):
        runs = groups[key]
        print(f"- {key[0]} {key[2]} in flight {key[3]}: "
              + " / ".join(num(r["throughput"]) for r in runs))


def spread(values):
    """median [min-max] of a list of ratios."""
    v = sorted(values)
    mid = v[(len(v) - 1) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2
    return f"{mid:.2f}x [{v[0]:.2f}-{v[-1]:.2f}]"


def pair_ratios(ours, theirs, field, value=lambda r, f: r.get(f)):
    out = []
    for a, b in zip(ours, theirs):
        x, y = value(a, field), value(b, field)
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and x > 0 and y > 0:
            out.append(x / y)
    return out


def print_ratios(groups):
    print("### Ratios, pair by pair")
    print()
    ours = sorted((k for k in groups if k[0].startswith("walguard")), key=sort_key)
    if not ours:
        print("No walguard rows in this run: ratios skipped.")
        return
    print("Run i of walguard is divided by run i of the peer (the same round, so under the "
          "same load); each cell is the median of those ratios, [lowest-highest], over n pairs. "
          "Throughput > 1: walguard is faster. p50 and CPU per write < 1: walguard answers "
          "sooner, or spends less CPU per write.")
    print()
    print("| walguard system | synchronous | in flight | vs | pairs | throughput | p50 | CPU per write |")
    print("|---|---|--:|---|--:|--:|--:|--:|")
    for key in ours:
        system, workload, sync, in_flight = key
        peers = [
            ("batching-writer", ("batching-writer", workload, sync, in_flight)),
            ("tokio-rusqlite", ("tokio-rusqlite", workload, sync, in_flight)),
        ]
        if in_flight > 1:
            # The ceiling runs at one in flight only; a lone writer is not
            # compared with it (it measures the hop, not throughput).
            peers.append(("raw-batched", ("raw-batched", workload, sync, 1)))
        for name, peer_key in peers:
            theirs = groups.get(peer_key)
            if not theirs:
                continue
            mine = groups[key]
            n = min(len(mine), len(theirs))
            if any(a["writes"] != b["writes"] for a, b in zip(mine, theirs)):
                name += " (different write counts!)"
            t = pair_ratios(mine, theirs, "throughput")
            p = pair_ratios(mine, theirs, "p50_us")
            c = pair_ratios(mine, theirs, "cpu_us_per_write")
            print(f"| {system} | {sync} | {in_flight} | {name} | {n} "
                  f"| {spread(t) if t else 'n/a'} | {spread(p) if p else 'n/a'} "
                  f"| {spread(c) if c else 'n/a'} |")


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
    groups = group_runs(rows)
    print_table(groups)
    print()
    print_ratios(groups)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

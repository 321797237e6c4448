#!/usr/bin/env python3
"""Regenerates benchmark tables in Markdown files from the benchmarks' JSON.

Each table sits between markers, and everything between them is replaced:

    <!-- BEGIN bench:http -->
    ...generated: the command, the date, the table...
    <!-- END bench:http -->

Usage:

    target/release/http-bench --runs 3 --json http.json
    target/release/engine-bench --full --json full.json
    python3 scripts/bench-tables.py README.md http=http.json engine=full.json
    python3 scripts/bench-tables.py --check README.md http=http.json   # exit 1 if it would change

NAME=FILE pairs name the marker (bench:NAME) and the JSON file. http-bench
writes one report object (`"bench": "http"`); engine-bench writes a list of
run results. Markers whose name is not given are left as they are.
"""

import datetime
import json
import os
import re
import sys


def ratio(x):
    return "" if x is None else f"{x:.2f}x"


def http_table(report, source):
    lines = [
        f"`{report['command']}` on {report['date']} ({source}); load average "
        f"{report['load_average_before']} before, {report['load_average_after']} after.",
        "",
    ]
    for note in report.get("notes", []):
        lines.append(f"- {note}")
    lines.append(
        f"- {report['keys']} keys, {report['value_size']}-byte values, "
        f"{report['seconds']:g} s per operation, median of {report['runs']} run(s)"
    )
    lines += [
        "",
        "| system | operation | ops/s | p50 ms | p99 ms | vs floor | vs Redis | vs etcd |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['system']} | {r['operation']} | {r['ops_per_sec']:.0f} | {r['p50_ms']:.3f} "
            f"| {r['p99_ms']:.3f} | {ratio(r.get('vs_floor'))} | {ratio(r.get('vs_redis'))} "
            f"| {ratio(r.get('vs_etcd'))} |"
        )
    return "\n".join(lines)


ENGINES = ["rocksdb", "fjall", "redb", "orbit-lsm", "orbit-cow"]
# Rows of the README's engine table: (label in engine-bench's JSON, row title).
ENGINE_ROWS = [
    ("fillrandom", "fillrandom"),
    ("readrandom", "readrandom"),
    ("scan", "scan (100 entries)"),
    ("overwrite", "overwrite"),
    ("ycsb-a", "ycsb-a"),
    ("fillrandom (sync, 16 writers)", "16 writers, fsync per commit"),
]


def group(n):
    return f"{n:,.0f}".replace(",", " ")


def engine_table(results, source, command, date):
    by = {}
    for r in results:
        by.setdefault(r["label"], {})[r["engine"]] = r
    engines = [e for e in ENGINES if any(e in v for v in by.values())]
    lines = [
        f"`{command}` on {date} ({source}); ops/s and the ratio to RocksDB in the same run.",
        "",
        "| workload | " + " | ".join(engines) + " |",
        "|---|" + "---:|" * len(engines),
    ]
    labels = [(l, t) for l, t in ENGINE_ROWS if l in by]
    labels += [(l, l) for l in by if l not in dict(ENGINE_ROWS)]
    for label, title in labels:
        row = by[label]
        base = row.get("rocksdb", {}).get("ops_per_sec")
        cells = []
        for e in engines:
            r = row.get(e)
            if r is None:
                cells.append("")
            elif base:
                cells.append(f"{group(r['ops_per_sec'])} ({r['ops_per_sec'] / base:.2f}x)")
            else:
                cells.append(group(r["ops_per_sec"]))
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    over = by.get("overwrite")
    if over:
        cells = [f"{over[e]['space_amp']:.2f}" if e in over else "" for e in engines]
        lines.append("| space amplification after overwrite | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render(name, path):
    with open(path) as f:
        data = json.load(f)
    if isinstance(data, dict) and data.get("bench") == "http":
        return http_table(data, path)
    if isinstance(data, list):
        date = datetime.date.fromtimestamp(os.path.getmtime(path)).isoformat()
        command = f"target/release/engine-bench --full --json {os.path.basename(path)}"
        return engine_table(data, path, command, date)
    raise SystemExit(f"{path}: not a report of http-bench or engine-bench")


def main(argv):
    check = "--check" in argv
    argv = [a for a in argv if a != "--check"]
    if len(argv) < 2 or any("=" not in a for a in argv[1:]):
        raise SystemExit(__doc__)
    doc_path = argv[0]
    with open(doc_path) as f:
        text = f.read()
    new = text
    for pair in argv[1:]:
        name, path = pair.split("=", 1)
        pattern = re.compile(
            rf"(<!-- BEGIN bench:{re.escape(name)} -->\n).*?(<!-- END bench:{re.escape(name)} -->)",
            re.S,
        )
        if not pattern.search(new):
            raise SystemExit(f"{doc_path}: no <!-- BEGIN bench:{name} --> ... END markers")
        table = render(name, path)
        new = pattern.sub(lambda m: m.group(1) + table + "\n" + m.group(2), new)
    if check:
        sys.exit(0 if new == text else 1)
    if new != text:
        with open(doc_path, "w") as f:
            f.write(new)
        print(f"{doc_path}: tables updated")
    else:
        print(f"{doc_path}: tables already current")


if __name__ == "__main__":
    main(sys.argv[1:])

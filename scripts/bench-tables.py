#!/usr/bin/env python3
"""Regenerates benchmark tables in Markdown files from the benchmarks' JSON.

Each table sits between markers, and everything between them is replaced:

    <!-- BEGIN bench:http -->
    ...generated: the command, the date, the table...
    <!-- END bench:http -->

Usage:

    target/release/http-bench --runs 3 --json http.json
    target/release/engine-bench --full --json full.json
    for i in 1 2 3; do target/release/engine-bench --full --json full$i.json; done
    python3 scripts/bench-tables.py README.md http=http.json engine=full1.json,full2.json,full3.json
    python3 scripts/bench-tables.py --check README.md http=http.json   # exit 1 if it would change

NAME=FILE pairs name the marker (bench:NAME) and the JSON file. http-bench
writes one report object (`"bench": "http"`); engine-bench writes a list of
run results; several engine-bench runs (comma-separated) give medians.
Markers whose name is not given are left as they are.
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
# Row titles that say more than engine-bench's label.
ENGINE_TITLES = {
    "scan": "scan (100 entries)",
    "fillrandom (sync, 16 writers)": "16 writers, fsync per commit",
}


def group(n):
    return f"{n:,.0f}".replace(",", " ")


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def engine_table(runs, sources, command, date):
    """runs: one list of results per engine-bench run. Every figure is the
    median over the runs; a ratio is taken within each run, then the median."""
    by = {}  # label -> engine -> [result per run]
    ratios = {}  # (label, engine) -> [ratio to rocksdb per run]
    cow_vs_redb = {}  # label -> [orbit-cow / redb per run]: the B+trees' own comparison
    for results in runs:
        base = {r["label"]: r["ops_per_sec"] for r in results if r["engine"] == "rocksdb"}
        redb = {r["label"]: r["ops_per_sec"] for r in results if r["engine"] == "redb"}
        for r in results:
            if r["engine"] == "orbit-cow" and redb.get(r["label"]):
                cow_vs_redb.setdefault(r["label"], []).append(r["ops_per_sec"] / redb[r["label"]])
            by.setdefault(r["label"], {}).setdefault(r["engine"], []).append(r)
            if base.get(r["label"]):
                ratios.setdefault((r["label"], r["engine"]), []).append(
                    r["ops_per_sec"] / base[r["label"]]
                )
    engines = [e for e in ENGINES if any(e in v for v in by.values())]
    lines = [
        f"`{command}`, {len(runs)} run(s) on {date} ({', '.join(sources)}); ops/s and the "
        "ratio to RocksDB, medians of the runs (ratios taken within a run, then the median).",
        "",
        "| workload | " + " | ".join(engines) + " | orbit-cow / redb |",
        "|---|" + "---:|" * (len(engines) + 1),
    ]
    # engine-bench's own order: fills, read-only runs, runs that change the store.
    for label in by:
        title = ENGINE_TITLES.get(label, label)
        cells = []
        for e in engines:
            rs = by[label].get(e)
            if not rs:
                cells.append("")
                continue
            ops = group(median([r["ops_per_sec"] for r in rs]))
            rt = ratios.get((label, e))
            cells.append(f"{ops} ({median(rt):.2f}x)" if rt else ops)
        cr = cow_vs_redb.get(label)
        cells.append(f"{median(cr):.2f}x" if cr else "")
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    for label, title, field, fmt in [
        ("overwrite", "space amplification after overwrite", "space_amp", "{:.2f}"),
        ("overwrite", "write amplification, overwrite", "write_amp", "{:.1f}"),
        ("ycsb-a", "write amplification, ycsb-a", "write_amp", "{:.1f}"),
    ] + [(l, f"p99 us, {l}", "p99_us", "{:.0f}") for l in P99_ROWS + paced(by)] + [
        (l, f"writer's writes/s, {l}", writer_rate, "{:,.0f}")
        for l in ["readwhilewriting"] + paced(by)
    ]:
        if label not in by:
            continue
        value = field if callable(field) else (lambda r, f=field: r[f])
        cells = [
            fmt.format(median([value(r) for r in by[label][e]])).replace(",", " ")
            if e in by[label]
            else ""
            for e in engines
        ]
        lines.append(f"| {title} | " + " | ".join(cells) + " | |")
    return "\n".join(lines)


# Latency rows under the table: the read workloads whose tail issue 18 compares.
P99_ROWS = ["readrandom", "readrandom (4 threads)", "ycsb-c", "readwhilewriting"]


def paced(by):
    """The readwhilewriting runs whose writer has a fixed pace."""
    return [l for l in by if l.startswith("readwhilewriting (writer ")]


def writer_rate(r):
    """readwhilewriting: the background writer's writes per second of the run."""
    return r["writes"] / r["elapsed_s"] if r["elapsed_s"] else 0.0


def render(name, paths):
    datas = []
    for path in paths:
        with open(path) as f:
            datas.append(json.load(f))
    if len(datas) == 1 and isinstance(datas[0], dict) and datas[0].get("bench") == "http":
        return http_table(datas[0], paths[0])
    if all(isinstance(d, list) for d in datas):
        date = max(
            datetime.date.fromtimestamp(os.path.getmtime(p)) for p in paths
        ).isoformat()
        command = "target/release/engine-bench --full --json fullN.json"
        return engine_table(datas, [os.path.basename(p) for p in paths], command, date)
    raise SystemExit(f"{','.join(paths)}: not one http-bench report or engine-bench runs")


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
        table = render(name, path.split(","))
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

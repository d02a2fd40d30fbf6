"""The table of scripts/bench-analysis: svc-run's and FitTrackee's JSON lines, joined by file.

    python analysis_table.py RUST.jsonl PYTHON.jsonl TARGET

Prints file, size, points (svc-run / FitTrackee), median µs per file on each side and the
ratio, then the minimum ratio over the files both pipelines read, PASS or MISS against TARGET.
A file one side refuses is listed with the reason and left out of the minimum.
"""

import json
import os
import sys


def load(path):
    rows = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                row = json.loads(line)
                rows[os.path.basename(row["file"])] = row
    return rows


def us(value):
    return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"


def main():
    rust, python, target = load(sys.argv[1]), load(sys.argv[2]), float(sys.argv[3])
    header = f"{'file':<44} {'bytes':>9} {'points':>11} {'svc-run µs':>11} {'FitTrackee µs':>14} {'ratio':>8}"
    print(header)
    print("-" * len(header))
    ratios = []
    notes = []
    for name in sorted(set(rust) | set(python)):
        r, p = rust.get(name, {}), python.get(name, {})
        size = r.get("bytes") or p.get("bytes") or os.path.getsize(r.get("file") or p["file"])
        points = f"{r.get('points', '–')}/{p.get('points', '–')}"
        r_us = us(r["median_us"]) if "median_us" in r else "refused"
        p_us = us(p["median_us"]) if "median_us" in p else "refused"
        if "median_us" in r and "median_us" in p:
            ratio = p["median_us"] / r["median_us"]
            ratios.append((ratio, name))
            ratio_text = f"{ratio:,.0f}×"
        else:
            ratio_text = "–"
            for side, row in (("svc-run", r), ("FitTrackee", p)):
                if "error" in row:
                    notes.append(f"{name}: {side} refused it ({row['error']})")
        print(f"{name:<44} {size:>9,} {points:>11} {r_us:>11} {p_us:>14} {ratio_text:>8}")
    print()
    for note in notes:
        print(f"  {note}")
    if not ratios:
        print("no file read by both pipelines")
        return 1
    low, low_name = min(ratios)
    verdict = "PASS" if low >= target else "MISS"
    print(
        f"minimum ratio {low:,.1f}× ({low_name}) over {len(ratios)} files read by both;"
        f" target ≥ {target:g}×: {verdict}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

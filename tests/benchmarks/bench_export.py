"""Export benchmark: how long `archivist export` takes per asset and per 1,000 shots.

Run ``python tests/benchmarks/bench_export.py`` (``--assets N --shots M`` per asset, ``--json``).
A catalog of N assets of M shots each (captions, tags, no models, no indexes) is written with
``tests/catalog_helpers.py`` into a temporary home; then each format is exported to a folder
three times: cold (every asset written), warm (nothing changed: every asset skipped by its
content hash) and forced (every asset rendered and written again, the catalog already warm).
The figures are wall-clock seconds on whatever machine runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from catalog_helpers import ShotSpec, write_catalog

from catalog.settings import Settings
from exports.run import export


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=20)
    parser.add_argument("--shots", type=int, default=50, help="shots per asset")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    topics = ("dog", "car", "beach", "city", "forest")
    specs = [
        ShotSpec(f"reel-{a:04d}", topics[(a + s) % 5], tags=["tag"])
        for a in range(args.assets)
        for s in range(args.shots)
    ]
    results = []
    with tempfile.TemporaryDirectory() as root:
        settings = Settings(home=os.path.join(root, "home"), catalog_url=None)
        started = time.perf_counter()
        write_catalog(settings, specs, spaces=())
        built = time.perf_counter() - started
        shots = len(specs)
        for formats in (["webvtt"], ["iiif"], ["pbcore"], ["webvtt", "iiif", "pbcore"]):
            out = os.path.join(root, "out-" + "-".join(formats))
            row: dict[str, object] = {"formats": formats}
            for phase, force in (("cold", False), ("warm", False), ("forced", True)):
                t0 = time.perf_counter()
                summary = export(settings, out=out, formats=formats, everything=True, force=force)
                seconds = time.perf_counter() - t0
                row[phase] = {
                    "seconds": round(seconds, 3),
                    "per_asset_ms": round(1000 * seconds / args.assets, 2),
                    "per_1000_shots_s": round(1000 * seconds / shots, 3),
                    "written": len(summary["exported"]),
                    "skipped": len(summary["skipped"]),
                }
            sizes = [p.stat().st_size for p in Path(out).rglob("*") if p.is_file()]
            row["bytes_per_asset"] = round(sum(sizes) / args.assets)
            results.append(row)
    report = {"assets": args.assets, "shots": shots, "catalog_write_s": round(built, 2), "results": results}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{args.assets} assets, {shots} shots (catalog written in {built:.1f} s)")
    for row in results:
        parts = [
            f"{phase} {row[phase]['per_asset_ms']} ms/asset, {row[phase]['per_1000_shots_s']} s/1000 shots"  # type: ignore[index]
            for phase in ("cold", "warm", "forced")
        ]
        print(f"{'+'.join(row['formats']):12s} " + "; ".join(parts) + f"; {row['bytes_per_asset']} B/asset")  # type: ignore[arg-type]


if __name__ == "__main__":
    main()

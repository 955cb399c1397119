"""What a remaster costs now that it no longer describes.

Before stages owned their rows, `archivist remaster` had to run every describing stage too
(a commit replaced all of an asset's rows, so a remaster alone would have dropped its shots'
safety scores and hashes). That run is the default job with the remaster stage switched on;
today's is the remaster stage alone. Both run on the same footage, already described once,
and the figure is their wall time and the tables each rewrote.

    python tests/benchmarks/bench_remaster_only.py [--clips 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from conftest import write_clip  # noqa: E402

from catalog.iceberg import open_catalog, table  # noqa: E402
from catalog.schema import TABLES  # noqa: E402
from catalog.settings import Settings  # noqa: E402
from jobs.run import run_job  # noqa: E402
from jobs.spec import default_spec, only_stages, parse_spec  # noqa: E402

REMASTER = {"restore": "off", "upscale": 1}


def snapshots(settings: Settings) -> dict[str, int | None]:
    catalog = open_catalog(settings)
    current = {name: table(catalog, name).current_snapshot() for name in TABLES}
    return {name: s.snapshot_id if s else None for name, s in current.items()}


def timed_run(spec: Any, settings: Settings) -> dict[str, Any]:
    before = snapshots(settings)
    started = time.perf_counter()
    summary = run_job(spec)
    seconds = time.perf_counter() - started
    after = snapshots(settings)
    return {
        "seconds": round(seconds, 1),
        "tables_rewritten": sorted(n for n in TABLES if after[n] != before[n]),
        "assets": summary["assets"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        os.environ["ARCHIVIST_HOME"] = str(Path(work) / "archive")
        settings = Settings()
        source = Path(work) / "tapes"
        source.mkdir()
        for i in range(args.clips):
            write_clip(source / f"tape{i}.mp4", seconds=4, size=(320, 180), cuts=2, seed=300 + i)
        run_job(default_spec(str(source)))  # described once, as an archive's footage is

        described = default_spec(str(source)).model_dump()
        described["name"] = "remaster-and-describe"
        described["stages"]["remaster"] = {"enabled": True, **REMASTER, "out": str(Path(work) / "a")}
        both = timed_run(parse_spec(described), settings)

        stages = only_stages(remaster={**REMASTER, "out": str(Path(work) / "b")})
        spec = parse_spec({"name": "remaster", "source": {"uri": str(source)}, "stages": stages})
        alone = timed_run(spec, settings)
    figures = {
        "clips": args.clips,
        "remaster_and_describe": both,
        "remaster_only": alone,
        "time_ratio": round(alone["seconds"] / both["seconds"], 2),
    }
    if args.json:
        print(json.dumps(figures))
        return
    for name in ("remaster_and_describe", "remaster_only"):
        run = figures[name]
        print(f"{name:>22}: {run['seconds']:6.1f} s, rewrote {', '.join(run['tables_rewritten'])}")
    print(f"{'remaster-only / both':>22}: {figures['time_ratio']:.2f}")


if __name__ == "__main__":
    main()

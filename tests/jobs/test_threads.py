"""A stage's CPUs are its actor's threads: torch, onnxruntime and OpenCV in the actor keep to
them, and a local Ray counts the cores there are, fitting a plan's actors into them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest
import torch

from actors import models
from actors.ocr import TextReader
from actors.safety import SafetyScorer
from actors.stage import Resources
from jobs.plan import StageActor, fit_to_cpus, plan_cpus, plan_steps
from jobs.spec import default_spec, parse_spec


@pytest.fixture
def restored_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's pools as they were before the test set a budget."""
    torch_threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    for key in models.THREAD_ENVIRONMENT:
        monkeypatch.delenv(key, raising=False)
    yield
    torch.set_num_threads(torch_threads)
    cv2.setNumThreads(cv2_threads)
    monkeypatch.setattr(models, "_thread_budget", None)


def _ort_threads(session: object) -> tuple[int, str]:
    options = session.get_session_options()  # type: ignore[attr-defined]
    return options.intra_op_num_threads, options.get_session_config_entry("session.intra_op.allow_spinning")


def test_a_steps_thread_count_reaches_torch_onnxruntime_and_opencv_in_its_actor(
    restored_threads: None, tmp_path: Path
) -> None:
    """The setup path an actor runs (without Ray): the budget is set before the models load, so
    the sessions they open, including the ones rapidocr opens itself, keep to it."""
    safety, ocr = SafetyScorer.Params(), TextReader.Params()
    actor = StageActor(
        [(SafetyScorer, safety), (TextReader, ocr)],
        {"keyframe_root": str(tmp_path)},
        grouped=True,
        fans_out=False,
        threads=1,
    )
    assert torch.get_num_threads() == 1 and cv2.getNumThreads() == 1
    assert all(models.os.environ[key] == "1" for key in models.THREAD_ENVIRONMENT)
    stages = actor.run.stages
    assert _ort_threads(stages["safety"].session) == (1, "0")
    assert stages["ocr"].engine.text_det.session.session.get_session_options().intra_op_num_threads == 1
    assert stages["ocr"].engine.text_rec.session.session.get_session_options().intra_op_num_threads == 1


def test_a_thread_count_set_in_the_spec_wins_over_the_steps(restored_threads: None, tmp_path: Path) -> None:
    actor = StageActor(
        [(SafetyScorer, SafetyScorer.Params(threads=2))],
        {"keyframe_root": str(tmp_path)},
        grouped=False,
        fans_out=False,
        threads=1,
    )
    assert _ort_threads(actor.run.session)[0] == 2 and torch.get_num_threads() == 1


def test_a_steps_threads_are_its_declared_cpus() -> None:
    spec = parse_spec(
        {
            "name": "n",
            "source": {"uri": "."},
            "stages": {"keyframes": {"resources": {"num_cpus": 2}}, "text": {"resources": {"num_cpus": 0.5}}},
        }
    )
    threads = {s.name: s.threads for s in plan_steps(spec.enabled())}
    assert threads == {"speech": 1, "segment": 1, "keyframes": 2, "text": 1}
    assert Resources(num_cpus=3.5).threads == 3


def test_a_plan_with_more_actors_than_cores_is_fitted_into_them() -> None:
    """The default plan holds up to seven actors; on two cores their requests shrink so all
    of them fit (no step waits for a CPU that only steps waiting for its output hold), and
    each keeps its thread; a step asking for more threads than there are cores gets the cores."""
    steps = plan_steps(default_spec(".").enabled())
    assert plan_cpus(steps) == 7
    for cpus in (1.0, 2.0):
        fitted = fit_to_cpus(steps, cpus)
        assert plan_cpus(fitted) <= cpus
        assert [s.threads for s in fitted] == [1, 1, 1, 1]
        assert [s.resources.max_actors for s in fitted] == [s.resources.max_actors for s in steps]
    big = parse_spec(
        {"name": "n", "source": {"uri": "."}, "stages": {"keyframes": {"resources": {"num_cpus": 4}}}}
    )
    fitted = fit_to_cpus(plan_steps(big.enabled()), 2.0)
    assert {s.name: s.threads for s in fitted}["keyframes"] == 2
    roomy = fit_to_cpus(steps, 16.0)
    assert [s.resources for s in roomy] == [s.resources for s in steps]


def test_the_local_ray_counts_the_cores_this_process_may_use(ray_session) -> None:
    from jobs.ray_runtime import local_cpus, machine_cores

    assert ray_session.cluster_resources()["CPU"] == machine_cores() == local_cpus()


def test_a_ray_actor_runs_its_steps_threads(ray_session, tmp_path: Path) -> None:
    """Through Ray Data, as a run places it: the actor's torch and onnxruntime keep to the step's
    thread count, whatever the machine's cores."""
    import pyarrow as pa
    import ray.data

    from jobs.plan import Step, _map, _named

    class Probe(StageActor):
        def __call__(self, batch: pa.Table) -> pa.Table:
            session = self.run.session
            return pa.table(
                {
                    "torch": [torch.get_num_threads()],
                    "ort": [session.get_session_options().intra_op_num_threads],
                    "opencv": [cv2.getNumThreads()],
                }
            )

    spec = parse_spec({"name": "n", "source": {"uri": "."}, "stages": {}})
    safety = next(e for e in spec.enabled() if e.stage is SafetyScorer)
    step = Step("safety", (safety,), Resources(max_actors=1, num_cpus=0.5, batch_size=1), False, 1)
    kwargs = {
        "members": [(SafetyScorer, safety.params)],
        "context": {},
        "grouped": False,
        "fans_out": False,
        "threads": step.threads,
    }
    probe = type("SafetyProbe", (Probe,), {"__module__": __name__})
    assert _named(step).__name__ == "SafetyStep"
    ds = _map(ray.data.from_items([{"x": 1}]), probe, kwargs, step.resources)
    assert ds.take_all() == [{"torch": 1, "ort": 1, "opencv": 1}]

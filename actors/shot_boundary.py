"""Shot boundaries: where one shot ends and the next begins, from small per-frame features.

Hard cuts and gradual transitions (dissolves, fades) are decided here, on the features the
segment run keeps for the last couple of seconds of frames (``ShotFrame``). The tests are a
mixin of the run, since a boundary found late moves the running sums and keyframe candidates
the run owns (its ``place``). ``actors.segment``'s docstring gives the tests in words.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np


@dataclass(slots=True)
class ShotFrame:
    """What is kept of one analysed frame while boundaries near it may still move."""

    idx: int
    pts: int | None
    thumb: np.ndarray  # float32 luma thumbnail, flattened
    unit: np.ndarray  # thumb, zero-mean and unit-norm
    hist: np.ndarray  # hue x saturation histogram of the non-dark pixels, sums to 1 (or 0)
    mu: float  # mean luma
    sd: float  # std of luma
    flat: bool
    sharp: float
    noise: float
    sat: float
    black: bool
    mono: bool
    s: float = 0.0  # distance to the previous frame


@dataclass
class Gradual:
    """The best gradual-transition window seen in the current run of them."""

    quality: float
    centre: int
    window: tuple[int, int]  # first and last frame of the best window
    last_seen: int
    hits: int = 1  # windows ending at successive frames that passed the tests


class ShotBoundaries:
    """Cut and gradual-transition tests over the run's recent frames (a mixin of the run)."""

    recent: deque[ShotFrame]
    count: int
    seg: Any  # the stage: threshold, min_shot_frames, detect_gradual
    window: int
    horizon: int
    lags: list[int]
    thumb_size: tuple[int, int]
    shots: list[Any]
    gradual: Gradual | None
    scorer: Any  # actors.transnet.TransNetScorer, when TransNetV2 runs
    learned_seen: int  # frames whose TransNetV2 probability has been looked at
    learned_run: tuple[int, float] | None  # first frame and peak of an open run above threshold
    gradual_windows: list[tuple[int, int]]  # frames of each gradual transition the tests found

    def place(self, c: int, transition: str) -> None:
        raise NotImplementedError

    def at(self, idx: int) -> ShotFrame:
        return self.recent[idx - self.recent[0].idx]

    def distance(self, a: ShotFrame, b: ShotFrame, compensate: bool = False) -> float:
        """How different two frames look: 0 alike, 1 or more a different picture.

        ``compensate``: for frames close in time, also compare after undoing the global shift
        between them (phase correlation), so that a fast pan does not look like a new picture.
        """
        if a.flat or b.flat:
            # A flat frame has no structure to compare; the other frame's contrast stands in.
            # A picture with real contrast next to a flat frame is a cut; the last frames of a
            # fade to black, already dim, are not.
            st = 0.0 if (a.flat and b.flat) else min(1.0, max(0.0, max(a.sd, b.sd) - 12.0) / 20.0)
        else:
            st = 1.0 - float(a.unit @ b.unit)
            if compensate and st > 0.1:
                st = min(st, self.shifted_structure(a, b))
            st *= min(1.0, min(a.sd, b.sd) / 12.0)
        colour = 0.5 * float(np.abs(a.hist - b.hist).sum()) * min(1.0, min(a.mu, b.mu) / 60.0)
        return st + 0.25 * colour + abs(a.mu - b.mu) / 255.0

    def shifted_structure(self, a: ShotFrame, b: ShotFrame) -> float:
        """Structural distance after undoing the global shift between two frames, trusted only
        when the shift makes them match well: a small overlap of two unrelated pictures can
        correlate by chance, and a cut must not pass for a pan."""
        w, h = self.thumb_size
        ta, tb = a.thumb.reshape(h, w), b.thumb.reshape(h, w)
        (dx, dy), _ = cv2.phaseCorrelate(ta, tb)
        ix, iy = round(dx), round(dy)
        if (ix == 0 and iy == 0) or abs(ix) > w // 4 or abs(iy) > h // 4:
            return 1.0
        # b[y, x] ~ a[y - iy, x - ix] on the part of the picture both frames show
        pa_ = ta[max(0, -iy) : h - max(0, iy), max(0, -ix) : w - max(0, ix)].ravel()
        pb_ = tb[max(0, iy) : h - max(0, -iy), max(0, ix) : w - max(0, -ix)].ravel()
        pa_ = pa_ - pa_.mean()
        pb_ = pb_ - pb_.mean()
        ncc = float(pa_ @ pb_) / (float(np.linalg.norm(pa_) * np.linalg.norm(pb_)) + 1e-3)
        return 1.0 - ncc if ncc >= 0.7 else 1.0

    # ---- hard cuts --------------------------------------------------------------------------

    def decide_cut(self, c: int, end: int | None = None) -> None:
        """Is frame ``c`` the first of a new shot? Decided two frames later (flash test)."""
        if c < 1:
            return
        end = self.count if end is None else end
        f = self.at(c)
        first = self.recent[0].idx
        before = sorted(self.at(i).s for i in range(max(first + 1, c - self.window), c))
        background = before[len(before) // 2] if before else 0.0
        if f.s < max(self.seg.threshold, 2.0 * background + 0.1):
            return
        after = max((self.at(j).s for j in range(c + 1, min(end, c + 3))), default=0.0)
        if f.s < 1.5 * after + 0.05:
            return  # not a lone peak: the picture keeps changing as fast (motion, an object passing)
        pairs = [
            (self.at(i), self.at(j)) for i in range(max(first, c - 3), c) for j in range(c, min(end, c + 3))
        ]
        # The change must last: the frames after differ from the frames before by more than
        # motion alone gives over a few frames (a flash or a damaged frame comes back).
        lasting = min(self.distance(a, b, compensate=True) for a, b in pairs)
        if lasting < max(0.6 * f.s, 3.0 * background):
            return
        self.place(c, "cut")

    # ---- gradual transitions ----------------------------------------------------------------

    def look_for_gradual(self, t: int) -> None:
        best: tuple[float, int, tuple[int, int]] | None = None
        first = self.recent[0].idx
        cur = self.at(t)
        for k in self.lags:
            a = t - k
            if a < first:
                break
            fa = self.at(a)
            d = self.distance(fa, cur)
            if d < 0.35:
                continue
            if max(self.at(i).s for i in range(a + 1, t + 1)) > 0.5 * d:
                continue  # one step carries the change: a cut, not a transition
            v = cur.thumb - fa.thumb
            vv = float(v @ v) + 1e-6
            alphas: list[float] = []
            ok = True
            for m in (a + k // 4, a + k // 2, a + 3 * k // 4):
                u = self.at(m).thumb - fa.thumb
                alpha = float(u @ v) / vv
                resid = float(np.linalg.norm(u - alpha * v)) / math.sqrt(vv)
                if resid > 0.4:
                    ok = False
                    break
                alphas.append(alpha)
            if not ok or not (alphas[0] <= alphas[1] <= alphas[2]) or not 0.2 < alphas[1] < 0.8:
                continue
            mid = self.at(a + k // 2)
            dark = fa.sd < 12 or fa.mu < 30 or cur.sd < 12 or cur.mu < 30
            if not dark and mid.sd > 0.93 * 0.5 * (fa.sd + cur.sd):
                continue  # a dissolve between two pictures dims the contrast half-way
            quality = d * (1.0 - resid)
            centre = round(a + k // 2 + (0.5 - alphas[1]) * k)
            if best is None or quality > best[0]:
                best = (quality, centre, (a, t))
        g = self.gradual
        if best is not None:
            if g is None:
                self.gradual = Gradual(*best, last_seen=t)
            else:
                if best[0] > g.quality:
                    g.quality, g.centre, g.window = best
                g.last_seen, g.hits = t, g.hits + 1
        elif g is not None and t - g.last_seen > self.lags[-1] // 2:
            self.gradual = None
            self.place_gradual(g)

    def place_gradual(self, g: Gradual) -> None:
        # A boundary already inside the transition's window is this transition, found by the
        # cut test on its steepest step (the windows admit no step that is a cut on its own).
        # kept while a late TransNetV2 answer may still meet them: bounded, as the run's memory is
        self.gradual_windows = [w for w in self.gradual_windows if w[1] >= self.count - self.horizon]
        self.gradual_windows.append(g.window)
        for shot in self.shots[1:]:
            if g.window[0] < shot.start <= g.window[1]:
                shot.transition = "gradual"
                return
        self.place(g.centre, "gradual")

    # ---- TransNetV2, alone or fused -----------------------------------------------------------

    def take_learned(self, final: bool = False) -> None:
        """Turn the TransNetV2 probabilities that arrived into transitions (runs of frames above
        ``transnet_threshold``); ``final``: the video has ended, close an open run."""
        probabilities = self.scorer.probabilities
        threshold = self.seg.transnet_threshold
        for i in range(self.learned_seen, len(probabilities)):
            p = probabilities[i]
            run = self.learned_run
            if p > threshold:
                self.learned_run = (i, p) if run is None else (run[0], max(run[1], p))
            elif run is not None:
                self.learned_run = None
                self.place_learned(run[0], i - 1)
        self.learned_seen = len(probabilities)
        if final and self.learned_run is not None:
            first, self.learned_run = self.learned_run[0], None
            self.place_learned(first, self.learned_seen - 1)

    def place_learned(self, first: int, last: int) -> None:
        """A transition TransNetV2 found over frames ``first``..``last``.

        It marks a cut on the old shot's last frame (a run of one or two frames) and a dissolve
        or fade over the frames it mixes, so the new shot starts after a short run and half-way
        through a long one. Fused, a boundary archivist's tests already placed inside or next to
        the run is the same transition and stands as it is; the network's boundary is added where
        there is none (the tests miss subtle dissolves and cuts between similar pictures, the
        network misses fades through long blacks and cuts its training never showed it).
        """
        gradual = last - first >= 2
        at = (first + last + 1) // 2 if gradual else last + 1
        if self.seg.detector == "fused":
            lo, hi = first - 2, last + 3
            if any(lo <= shot.start <= hi for shot in self.shots[1:]):
                return
            # a fade the tests found over its whole length, the network only at its steep end
            if any(a - 2 <= last and first <= b + 2 for a, b in self.gradual_windows):
                return
        self.place(at, "gradual" if gradual else "cut")

"""Reading an asset's packets and decoding them, once, the same way for every stage.

``segment`` and ``qc`` both walk a file packet by packet; a damaged file is normal input for
both, so how a bad packet is handled, where decoding is said to have stopped and how many
frames were decoded against how many the container declares must not differ between them.
``PacketReader`` is that one loop: it demuxes the chosen streams, decodes, records each decode
error with its stream, frame number and time, counts the video frames decoded, and says why
and where decoding stopped if it did. ``Prefetch`` runs any such iterator a few items ahead in
a thread, since PyAV releases the GIL while it decodes.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import av
import av.logging

MAX_BAD_PACKETS = 50
"""Consecutive undecodable packets after which a file is considered to end there."""


def explain(exc: BaseException) -> str:
    """An exception in words, prefixed with its type (what a row's ``error`` says)."""
    msg = str(exc).strip() or repr(exc)
    return f"{type(exc).__name__}: {msg}"


@dataclass
class DecodeError:
    """One decode error and where it happened: stream index (-1: the demuxer), the number of
    video frames decoded before it, and its time in seconds."""

    stream: int
    frame: int
    seconds: float
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "frame": self.frame,
            "seconds": round(self.seconds, 4),
            "message": self.message.strip(),
        }


@dataclass
class PacketReader:
    """Demux ``streams`` of ``container``, decode every packet, yield ``(stream_index, frame)``.

    ``video`` is the stream whose frames are counted (``frames_decoded``) and whose last frame
    time places errors that carry no time of their own. A packet that fails to decode is
    recorded and skipped; after ``max_bad_packets`` in a row (None: never) the file is taken to
    end there. ``decoders`` maps a stream index to a function decoding that stream's packets
    (e.g. a bitstream filter first), instead of ``packet.decode()``. At most ``max_errors`` are
    kept in ``errors``; ``error_count`` counts them all. ``capture_logs``: FFmpeg's own error
    messages while a packet decodes (concealed damage, which raises nothing) count as decode
    errors too. ``clock`` gives the time of an error that carries none (default: the last video
    frame's time).
    """

    container: Any
    streams: list[Any]
    video: Any | None = None
    max_bad_packets: int | None = MAX_BAD_PACKETS
    max_errors: int = 100
    decoders: dict[int, Callable[[Any], list[Any]]] = field(default_factory=dict)
    capture_logs: bool = False
    clock: Callable[[], float] | None = None
    errors: list[DecodeError] = field(default_factory=list)
    error_count: int = 0
    frames_decoded: int = 0
    last_time: float = 0.0
    stopped: str | None = None

    @property
    def declared_frames(self) -> int | None:
        """Frames the container declares for the video stream, if it counts them."""
        return int(self.video.frames) if self.video is not None and self.video.frames else None

    def note(self, stream: int, seconds: float | None, message: str) -> None:
        """Record a decode error at the current position."""
        self.error_count += 1
        if len(self.errors) < self.max_errors:
            at = seconds if seconds is not None else self.clock() if self.clock else self.last_time
            self.errors.append(DecodeError(stream, self.frames_decoded, at, message))

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        if not self.capture_logs:
            yield from self._read(None)
            return
        level = av.logging.get_level()
        av.logging.set_level(av.logging.ERROR)  # FFmpeg's error messages, captured below
        try:
            with av.logging.Capture(local=False) as logs:
                yield from self._read(logs)
        finally:
            av.logging.set_level(level)

    def _read(self, logs: list[Any] | None) -> Iterator[tuple[int, Any]]:
        packets = self.container.demux(*self.streams)
        video_index = self.video.index if self.video is not None else None
        bad = seen = 0
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.FFmpegError as exc:  # the demuxer cannot go on: the file ends here
                self.stopped = explain(exc)
                self.note(-1, None, f"reading stopped: {exc}")
                return
            index = packet.stream.index
            seconds = float(packet.pts * packet.time_base) if packet.pts is not None else None
            decode = self.decoders.get(index)
            try:
                frames = decode(packet) if decode is not None else packet.decode()
            except av.FFmpegError as exc:
                self.note(index, seconds, str(exc))
                seen = len(logs) if logs is not None else 0  # the exception says what its log said
                bad += 1
                if self.max_bad_packets is not None and bad >= self.max_bad_packets:
                    self.stopped = f"{bad} packets in a row failed to decode, last {explain(exc)}"
                    return
                continue
            bad = 0
            for frame in frames:
                if index == video_index:
                    self.frames_decoded += 1
                    self.last_time = float(frame.time or 0.0)
                yield index, frame
            if logs is not None:
                for level, name, message in logs[seen:]:
                    if level <= av.logging.ERROR:
                        self.note(index, seconds, f"[{name}] {message}")
                seen = len(logs)

    def video_frames(self) -> Iterator[Any]:
        """The decoded frames of the video stream alone."""
        for _, frame in self:
            yield frame


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Prefetch:
    """Runs a frame iterator in a thread, a few frames ahead, so that decoding (PyAV releases
    the GIL) overlaps the analysis of the frames already decoded."""

    _END = object()

    def __init__(self, source: Iterator[Any], depth: int) -> None:
        self.queue: queue.Queue[Any] = queue.Queue(depth)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(source,), name="archivist-decode", daemon=True)
        self.thread.start()

    def _run(self, source: Iterator[Any]) -> None:
        try:
            for item in source:
                if not self._put(item):
                    return
            self._put(self._END)
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(_Failure(exc))
        finally:  # here, not at garbage collection, so the container is let go before it closes
            close = getattr(source, "close", None)
            if close is not None:
                close()

    def _put(self, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[Any]:
        while True:
            item = self.queue.get()
            if item is self._END:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item

    def close(self) -> None:
        self.stop.set()
        self.thread.join()

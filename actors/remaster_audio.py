"""Every audio track of the source into each remaster output: copied where it can be, else transcoded.

The master (Matroska) takes every track as the source's packets, byte for
byte: Matroska carries PCM of any width, MP2, AC-3, WMA, FLAC, Opus and the
rest. The access copy is an MP4 a browser plays: AAC (and MP3) tracks are
copied, anything else (PCM, MP2, AC-3, WMA, FLAC, Opus, ...) is decoded once
and encoded to AAC at the source's rate (48 kHz where AAC has no such rate),
with its channels, timed from the source's first sample, so it never has to
give up on a track. A track Matroska cannot carry as it is (WMA, for one) goes
into the master as FLAC: lossless from what its decoder gives, and said so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av

ACCESS_COPIED = frozenset({"aac", "mp3", "mp3float"})
"""Audio the access copy (MP4, played by browsers) carries as it is."""
AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def copy_packet(packet: av.Packet) -> av.Packet:
    """A stand-alone copy: muxing takes a packet's data, and each audio packet may go to two files."""
    clone = av.Packet(bytes(packet))
    clone.pts, clone.dts, clone.duration = packet.pts, packet.dts, packet.duration
    clone.time_base = packet.time_base
    clone.is_keyframe = packet.is_keyframe
    for side_data in packet.iter_sidedata():
        clone.set_sidedata(side_data)
    return clone


def _layout(source: Any) -> str:
    layout = source.codec_context.layout
    channels = layout.nb_channels
    if all(channel.name != "NONE" for channel in layout.channels) and channels <= 8 and layout.name in (
            set(_LAYOUTS.values()) | {"3.0", "4.0", "5.0(side)", "5.1(side)", "7.1(wide)"}):
        return layout.name
    return _LAYOUTS.get(channels, "stereo")


@dataclass
class Track:
    """One source audio track in one output: ``copy`` its packets, or ``encode`` its decoded frames."""

    source: Any
    stream: Any
    transcode: bool
    sample_format: str = "fltp"
    why: str = ""
    resampler: Any = None
    start: int | None = None
    written: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    def mux(self, container: Any, packet: av.Packet, frames: list[av.AudioFrame] | None) -> None:
        if not self.transcode:
            if packet.dts is not None:
                copy = copy_packet(packet)
                copy.stream = self.stream
                container.mux(copy)
            return
        for frame in frames or []:
            self._encode(container, frame)

    def _encode(self, container: Any, frame: av.AudioFrame | None) -> None:
        rate = self.stream.rate
        if frame is not None and self.start is None:
            self.start = round(frame.time * rate) if frame.time is not None else 0
        if self.resampler is None:  # made once the encoder is open and knows its frame size
            frame_size = self.stream.codec_context.frame_size or 1024
            self.resampler = av.AudioResampler(format=self.sample_format, layout=self.stream.layout.name,
                                               rate=rate, frame_size=frame_size)
        for out in self.resampler.resample(frame):
            out.pts, out.time_base = (self.start or 0) + self.written, Fraction(1, rate)
            self.written += out.samples
            container.mux(self.stream.encode(out))

    def close(self, container: Any) -> None:
        if self.transcode:
            self._encode(container, None)
            container.mux(self.stream.encode(None))

    def manifest(self) -> dict[str, Any]:
        """What the manifest records of this (a remaster is reproducible from its manifest)."""
        ctx = self.source.codec_context
        out = {"source_index": self.source.index, "source_codec": ctx.name,
               "channels": ctx.layout.nb_channels, "sample_rate": ctx.sample_rate}
        if self.transcode:
            out.update(action="transcoded", codec=self.stream.codec_context.name, why=self.why,
                       bit_rate=self.stream.bit_rate or None, output_rate=self.stream.rate,
                       layout=self.stream.codec_context.layout.name)
        else:
            out.update(action="copied untouched", codec=ctx.name)
        return out


def _aac(container: Any, source: Any) -> Track:
    ctx = source.codec_context
    rate = ctx.sample_rate if ctx.sample_rate in AAC_RATES else 48000
    layout = _layout(source)
    stream = container.add_stream("aac", rate=rate, layout=layout)
    stream.bit_rate = 64000 * min(av.AudioLayout(layout).nb_channels, 6) + 64000
    return Track(source, stream, True, why=f"an MP4 for browsers does not carry {ctx.name}")


def _flac(container: Any, source: Any, reason: str) -> Track:
    ctx = source.codec_context
    deep = ctx.format is not None and ctx.format.bytes > 2
    stream = container.add_stream("flac", rate=ctx.sample_rate, layout=_layout(source))
    stream.format = "s32" if deep else "s16"
    return Track(source, stream, True, sample_format=stream.format.name, why=reason)


def add_tracks(container: Any, sources: Iterable[Any], *, transcode_unplayable: bool) -> dict[int, Track]:
    """A track in ``container`` for each source audio stream, by source index.

    ``transcode_unplayable``: the access copy, where what a browser cannot play becomes AAC;
    otherwise (the master) every track is copied, or made FLAC where the container refuses it.
    """
    tracks = {}
    for source in sources:
        name = source.codec_context.name
        if transcode_unplayable and name not in ACCESS_COPIED:
            tracks[source.index] = _aac(container, source)
            continue
        try:
            tracks[source.index] = Track(source, container.add_stream_from_template(source), False)
        except ValueError as exc:  # the container has no way to store this codec
            if transcode_unplayable:
                tracks[source.index] = _aac(container, source)
            else:
                tracks[source.index] = _flac(container, source, f"{container.format.name} cannot carry "
                                                                f"{name} ({exc}): decoded and kept lossless")
    return tracks

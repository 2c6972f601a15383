"""Loudness: parse ffmpeg's ebur128 summary and derive ReplayGain 2.0 values.

The measurement runs inline in the transcode pass (``aformat=sample_rates=44100:
channel_layouts=stereo,ebur128=peak=true`` on one encode branch), so it sees the
signal after the downmix and resample, exactly as listeners get it.

ReplayGain 2.0 uses EBU R128 integrated loudness with a reference of -18 LUFS:
``gain = -18 - integrated``; the peak tag is the true peak as a linear amplitude.
No gain is given for silence or for clips shorter than one 400 ms gating
block: ebur128 reports its floor (-70 LUFS) there, and a "gain" of +52 dB
would be a trap for players.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from encoder.tagging import ReplayGain
from origin.manifest import Loudness

REFERENCE_LUFS = -18.0
SILENCE_FLOOR_LUFS = -70.0
MIN_GATED_DURATION_S = 0.4

_SUMMARY_RE = re.compile(r"\] Summary:\s*$", re.M)
_FIELD_RES = {
    "integrated": re.compile(r"^\s+I:\s+(-?[\d.]+|-?inf|nan) LUFS", re.M),
    "lra": re.compile(r"^\s+LRA:\s+(-?[\d.]+|-?inf|nan) LU\b", re.M),
    "peak": re.compile(r"^\s+Peak:\s+(-?[\d.]+|-?inf|nan) dBFS", re.M),
}


@dataclass(frozen=True)
class Measurement:
    """The numbers ebur128 printed (None when a line was missing or not finite)."""

    integrated_lufs: float | None
    lra_lu: float | None
    true_peak_dbtp: float | None


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_ebur128_summary(stderr: str) -> Measurement | None:
    """The last ebur128 summary in an ffmpeg log, or None if there is none."""
    matches = list(_SUMMARY_RE.finditer(stderr))
    if not matches:
        return None
    block = stderr[matches[-1].end() :]
    values = {}
    for name, regex in _FIELD_RES.items():
        m = regex.search(block)
        values[name] = _number(m[1]) if m else None
    return Measurement(values["integrated"], values["lra"], values["peak"])


def is_measurable(measurement: Measurement | None, duration_s: float) -> bool:
    """False for silence and for clips too short for one gating block."""
    if measurement is None or measurement.integrated_lufs is None:
        return False
    if duration_s < MIN_GATED_DURATION_S:
        return False
    return measurement.integrated_lufs > SILENCE_FLOOR_LUFS + 0.05


def replaygain(measurement: Measurement | None, duration_s: float) -> ReplayGain | None:
    """ReplayGain 2.0 track gain and peak, or None where no gain should be given."""
    if not is_measurable(measurement, duration_s):
        return None
    assert measurement is not None and measurement.integrated_lufs is not None
    gain = round(REFERENCE_LUFS - measurement.integrated_lufs, 2)
    peak_db = measurement.true_peak_dbtp
    peak = 10 ** (peak_db / 20) if peak_db is not None else 0.0
    return ReplayGain(track_gain_db=gain, track_peak=round(peak, 6))


def loudness_summary(measurement: Measurement | None, duration_s: float) -> Loudness:
    """The manifest's ``loudness`` block (all null when nothing meaningful was measured)."""
    if measurement is None:
        return Loudness()
    peak = measurement.true_peak_dbtp
    if not is_measurable(measurement, duration_s):
        return Loudness(true_peak_dbtp=peak)
    gain = replaygain(measurement, duration_s)
    return Loudness(
        integrated_lufs=measurement.integrated_lufs,
        true_peak_dbtp=peak,
        lra=measurement.lra_lu,
        track_gain_db=gain.track_gain_db if gain else None,
    )

"""Encoding profiles, their fingerprint, the content-addressed version, the no-upscaling rule.

Two profiles, both three Ogg Vorbis rungs at 44.1 kHz stereo:

* ``quality`` (default, id ``vorbis-q-96-160-320/1``): libvorbis quality mode
  q2 / q5 / q9, the levels whose nominal rates are 96 / 160 / 320 kbps. Real
  rates follow the music (quiet or simple material comes out smaller), at the
  lowest CPU cost.
* ``abr`` (id ``vorbis-abr-96-160-320/1``): libvorbis managed bitrate with
  ``-b:a`` = ``-minrate`` = ``-maxrate`` = the rung's rate, for deployments that
  need a strict bitrate ceiling (and floor). About 2x the CPU of quality mode.

The version of a published track is ``sha256(source_sha256 + ":" +
fingerprint)[:16]``; the fingerprint is a canonical JSON of every setting that
changes the encoded bytes. Change a setting and the fingerprint (hence every
new version) changes with it; bump ``REVISION`` as well so the manifest's
``encoder.profile`` names the change.

Either profile is made by one of two engines (``ENCODER_ARRANGEMENT``):
``fanout`` (the default) runs one ``oggenc`` per rung on PCM decoded once (ids
``.../2``, the fingerprint names ``"encoder": "oggenc"``); ``onepass`` runs ffmpeg's
libvorbis (ids ``.../1``, the original fingerprints, kept so versions published
before ``fanout`` became the default keep their addresses): their files differ in
bytes, so their versions differ too. The oggenc build is Debian bookworm's
(vorbis-tools 1.4.2, libvorbis 1.3.7), the one ``docker/Dockerfile`` installs; a
build that encodes other bytes needs another revision here.

No upscaling: a lossy source is not re-encoded at rates it never had. The
rungs kept are every rung below the source's bitrate plus the first rung at or
above it (a 128 kbps MP3 gets 96 and 160, not 320; a 64 kbps one gets 96 only).
Lossless sources, and lossy ones whose bitrate is unknown, get every rung. The
manifest lists exactly the renditions that exist.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Literal

from encoder.errors import UsageError

ProfileName = Literal["quality", "abr"]
Engine = Literal["ffmpeg", "oggenc"]
REVISION = 1
# The fan-out arrangement encodes with oggenc (vorbis-tools): other bytes, so another
# fingerprint and revision; the one-pass ffmpeg profiles keep theirs (published versions stay).
OGGENC_REVISION = 2
SAMPLE_RATE = 44100
CHANNELS = 2


@dataclass(frozen=True)
class Rung:
    bitrate_kbps: int  # the nominal rate, and the rendition's name (96.ogg)
    quality: float | None = None  # libvorbis -q:a in quality mode

    def codec_options(self, mode: ProfileName) -> dict[str, object]:
        """ffmpeg output options for this rung (ffmpeg-python keyword form)."""
        if mode == "quality":
            return {"q:a": _num(self.quality)}
        rate = f"{self.bitrate_kbps}k"
        return {"b:a": rate, "minrate": rate, "maxrate": rate}

    def oggenc_args(self, mode: ProfileName) -> list[str]:
        """The same settings as ``oggenc`` options (libvorbis quality or managed bitrate)."""
        if mode == "quality":
            return ["-q", _num(self.quality)]
        rate = str(self.bitrate_kbps)
        return ["-b", rate, "-m", rate, "-M", rate]


def _num(value: float | None) -> str:
    return f"{value:g}"


@dataclass(frozen=True)
class Profile:
    name: ProfileName
    rungs: tuple[Rung, ...]
    revision: int = REVISION
    sample_rate: int = SAMPLE_RATE
    channels: int = CHANNELS
    engine: Engine = "ffmpeg"  # what runs libvorbis: ffmpeg's wrapper or oggenc

    @property
    def id(self) -> str:
        mode = "q" if self.name == "quality" else "abr"
        rates = "-".join(str(r.bitrate_kbps) for r in self.rungs)
        return f"vorbis-{mode}-{rates}/{self.revision}"

    @property
    def fingerprint(self) -> str:
        spec = {
            "id": self.id,
            "codec": "libvorbis",
            "container": "ogg",
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "rungs": [
                {"bitrate_kbps": r.bitrate_kbps, **r.codec_options(self.name)} for r in self.rungs
            ],
            "bitexact": True,
            "tags": "vorbiscomment+replaygain2+picture",
        }
        if self.engine != "ffmpeg":  # the one-pass fingerprint stays as it always was
            spec["encoder"] = self.engine
        return json.dumps(spec, sort_keys=True, separators=(",", ":"))

    def rung(self, bitrate_kbps: int) -> Rung:
        for r in self.rungs:
            if r.bitrate_kbps == bitrate_kbps:
                return r
        raise KeyError(bitrate_kbps)


PROFILES: dict[str, Profile] = {
    "quality": Profile("quality", (Rung(96, 2), Rung(160, 5), Rung(320, 9))),
    "abr": Profile("abr", (Rung(96), Rung(160), Rung(320))),
}


def get_profile(name: str, engine: Engine = "ffmpeg") -> Profile:
    """The profile ``name`` as encoded by ``engine`` (``oggenc``: the fan-out arrangement)."""
    try:
        profile = PROFILES[name]
    except KeyError:
        raise UsageError(
            f"unknown profile {name!r}: choose one of {', '.join(sorted(PROFILES))}"
        ) from None
    if engine == "ffmpeg":
        return profile
    return dataclasses.replace(profile, engine=engine, revision=OGGENC_REVISION)


def version_for(source_sha256: str, profile: Profile) -> str:
    """The content address of ``source`` encoded with ``profile`` (16 lowercase hex)."""
    material = f"{source_sha256}:{profile.fingerprint}".encode()
    return hashlib.sha256(material).hexdigest()[:16]


def select_rungs(
    profile: Profile, *, lossless: bool, bitrate_kbps: float | None
) -> tuple[Rung, ...]:
    """The rungs to produce for a source (the no-upscaling rule, module docstring)."""
    if lossless or not bitrate_kbps:
        return profile.rungs
    kept: list[Rung] = []
    for rung in profile.rungs:
        kept.append(rung)
        # 2% slack: a "128 kbps" MP3 reports 127.7 and a 96 kbps one 96.2
        if rung.bitrate_kbps >= bitrate_kbps * 0.98:
            break
    return tuple(kept)

"""Typed settings (``ENCODER_*`` environment variables), read once at start-up.

variable                  meaning                                    default
ENCODER_STORE             object store URL (file://, s3://, gs://)   file://./data/origin
ENCODER_FFMPEG            ffmpeg binary to run                       imageio-ffmpeg's bundled one
ENCODER_PROFILE           ``quality`` (q2/q5/q9) or ``abr``          quality
ENCODER_ARRANGEMENT       ``onepass`` (one ffmpeg, libvorbis) or     onepass
                          ``fanout`` (one decode, oggenc per rung)
ENCODER_OGGENC            oggenc binary (vorbis-tools) for fanout    ``oggenc`` on PATH
ENCODER_MAX_DURATION_S    longest source accepted, in seconds        10800 (3 hours)
ENCODER_MAX_COVER_BYTES   larger cover art is not copied (warning)   2097152 (2 MiB)
ENCODER_WORK_DIR          scratch space for renditions being built   <tmp>/audiocdn-encoder
ENCODER_JOBS              parallel jobs for ``encoder batch``        cores
ENCODER_NOTIFY_URL        delivery base URL told about publications  (none)
ENCODER_NOTIFY_TOKEN      admin bearer token for that notification   (none)
ENCODER_NOTIFY_TIMEOUT_S  how long to wait for delivery to answer    5

A bad value fails at start-up with one clear line, never halfway through an ingest.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from encoder.errors import UsageError

DEFAULT_STORE = "file://./data/origin"


class EncoderSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ENCODER_", extra="ignore", frozen=True)

    store: str = DEFAULT_STORE
    ffmpeg: str | None = None
    profile: Literal["quality", "abr"] = "quality"
    arrangement: Literal["fanout", "onepass"] = "onepass"
    oggenc: str = "oggenc"
    max_duration_s: float = Field(10800.0, gt=0)
    max_cover_bytes: int = Field(2 * 1024 * 1024, ge=0)
    work_dir: Path | None = None
    jobs: int | None = Field(None, ge=1, le=64)
    notify_url: str | None = None
    notify_token: SecretStr | None = None
    notify_timeout_s: float = Field(5.0, gt=0)

    @field_validator("ffmpeg")
    @classmethod
    def _ffmpeg_runs(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        found = shutil.which(value)
        if found is None:
            raise ValueError(f"{value!r} is not an executable ffmpeg binary")
        return found

    @field_validator("oggenc")
    @classmethod
    def _oggenc_given(cls, value: str) -> str:
        return value or "oggenc"

    @field_validator("notify_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @cached_property
    def ffmpeg_exe(self) -> str:
        """The ffmpeg binary to run: ENCODER_FFMPEG, else the one bundled with imageio-ffmpeg."""
        if self.ffmpeg:
            return self.ffmpeg
        return bundled_ffmpeg()

    @property
    def engine(self) -> Literal["ffmpeg", "oggenc"]:
        """What runs libvorbis: ffmpeg (``onepass``) or oggenc (``fanout``)."""
        return "oggenc" if self.arrangement == "fanout" else "ffmpeg"

    @cached_property
    def oggenc_exe(self) -> str:
        """The oggenc binary the fan-out arrangement runs; one clear line when it is missing."""
        found = shutil.which(self.oggenc)
        if found is None:
            raise UsageError(
                f"oggenc not found ({self.oggenc!r}): install vorbis-tools "
                "(apt-get install vorbis-tools), point ENCODER_OGGENC at it, "
                "or set ENCODER_ARRANGEMENT=onepass"
            )
        return found

    @property
    def work_root(self) -> Path:
        return self.work_dir or Path(tempfile.gettempdir()) / "audiocdn-encoder"

    @property
    def batch_jobs(self) -> int:
        """ENCODER_JOBS, else one track per core: a track leaves cores idle while it probes,
        tags and publishes (and ffmpeg 9 alone fills ~1.4 of 2), which a second track fills:
        measured on 2 cores, 20 tracks, --jobs 2 vs 1: 1.2x tracks/min (fanout), 1.3x (onepass).
        """
        return self.jobs or max(1, os.cpu_count() or 1)


def bundled_ffmpeg() -> str:
    """The ffmpeg binary inside the imageio-ffmpeg wheel.

    ``imageio_ffmpeg.get_ffmpeg_exe()`` proves the binary works by running it, which
    costs about 0.1 s per ingest; the wheel's own binary is located directly instead
    (and ffmpeg's first real run reports any problem). Anything unexpected falls back to
    the public function.
    """
    import imageio_ffmpeg  # imported lazily: it is only needed to locate the binary

    with contextlib.suppress(Exception):
        from imageio_ffmpeg._definitions import FNAME_PER_PLATFORM, get_platform
        from imageio_ffmpeg._utils import _get_bin_dir

        exe = os.path.join(_get_bin_dir(), FNAME_PER_PLATFORM[get_platform()])
        if os.path.isfile(exe) and os.access(exe, os.X_OK):
            return exe
    return imageio_ffmpeg.get_ffmpeg_exe()


def load_settings(**overrides: object) -> EncoderSettings:
    """Read the environment once; raise :class:`UsageError` with one line on a bad value."""
    try:
        return EncoderSettings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = "ENCODER_" + "_".join(str(p) for p in err.get("loc", ())).upper()
        raise UsageError(f"invalid setting {name}: {err.get('msg')}") from None

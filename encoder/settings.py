"""The encoder's settings: ``ENCODER_*`` environment variables, one :class:`EncoderSettings`.

Each variable is described once, in its ``Field(description=...)``; the README's
configuration table is generated from those (``python -m scripts.settings_tables``).
``encoder``'s command line reads them once (:func:`load_settings`, its options on
top) and hands the model down, so a bad value fails at start-up with one line naming
the variable (exit status 2), never halfway through an ingest.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from common.setting_values import InvalidSettings, build_settings
from encoder.errors import UsageError
from origin.settings import check_store_url

DEFAULT_STORE = "file://./data/origin"
MAX_JOBS = 64


class EncoderSettingsError(UsageError, InvalidSettings):
    """Bad ``ENCODER_*`` values (or options): ``lines``, one per bad value; CLI exit 2."""


class EncoderSettings(BaseSettings):
    """Every setting of the encoder (descriptions: the README table, generated from them)."""

    model_config = SettingsConfigDict(env_prefix="ENCODER_", extra="ignore", frozen=True)

    store: str = Field(
        DEFAULT_STORE,
        description="store URL renditions are published to: `file://`, `s3://` or `gs://`, "
        "as for `ORIGIN_STORE`; `--store` overrides",
    )
    ffmpeg: str | None = Field(
        None,
        description="another ffmpeg binary (a path, or a name on `PATH`), e.g. "
        "`/usr/bin/ffmpeg`: Debian's 5.1 uses about half the CPU, but its files differ by a "
        "few bytes, so keep one build per catalogue; checked at start-up",
        json_schema_extra={"shown_default": "bundled (imageio-ffmpeg, ffmpeg 9 with libvorbis)"},
    )
    profile: Literal["quality", "abr"] = Field(
        "quality",
        description="`quality` (libvorbis q2/q5/q9) or `abr` (`-b:a` with min/max rate: strict "
        "ceilings, about 2x the CPU); `--profile` overrides",
    )
    arrangement: Literal["fanout", "onepass"] = Field(
        "fanout",
        description="`fanout`: one ffmpeg decode (with the loudness meter) fanned out to an "
        "`oggenc` (Debian `vorbis-tools`) per rendition, all in parallel: about 0.6x the CPU "
        "and wall of `onepass`, one ffmpeg pass making every rendition (the arrangement before "
        "`fanout` became the default; other bytes, hence other versions: a catalogue "
        "published with it keeps re-ingests no-ops only under it)",
    )
    oggenc: str = Field(
        "oggenc",
        description="the oggenc binary `fanout` runs (a path, or a name on `PATH`); missing, "
        "ingest stops with one line naming the fixes",
    )
    max_duration_s: float = Field(
        10800.0,
        gt=0,
        description="longest source accepted, in seconds (3 hours); longer: refused before "
        "encoding (exit 1)",
    )
    max_cover_bytes: int = Field(
        2 * 1024 * 1024,
        ge=0,
        description="larger embedded cover art is not copied into the renditions nor published "
        "as the track's cover image (a warning); bytes",
    )
    work_dir: Path | None = Field(
        None,
        description="scratch space for renditions being built: a directory per ingest, "
        "removed however it ends",
        json_schema_extra={"shown_default": "`<tmp>/audiocdn-encoder`"},
    )
    jobs: int | None = Field(
        None,
        ge=1,
        le=MAX_JOBS,
        description=f"parallel tracks of `encoder batch`, 1-{MAX_JOBS}; `--jobs` overrides",
        json_schema_extra={"shown_default": "one per core"},
    )
    notify_url: str | None = Field(
        None,
        description="delivery base URL told about each publication "
        "(`POST /v1/admin/events`; a failure is a warning); `--notify` overrides",
    )
    notify_token: SecretStr | None = Field(
        None, description="delivery admin bearer token sent with that notification"
    )
    notify_timeout_s: float = Field(
        5.0, gt=0, description="seconds to wait for delivery to answer the notification"
    )

    @field_validator("store")
    @classmethod
    def _store_url(cls, value: str) -> str:
        return check_store_url(value)

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
        tags and publishes, and its three encoders finish unevenly, which a second track
        fills: measured on 2 cores, 20 tracks of 60 s, --jobs 2 vs 1: 1.28x tracks/min
        (fanout), 1.46x (onepass).
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


def load_settings(options: Mapping[str, str] | None = None, **overrides: object) -> EncoderSettings:
    """The environment, ``overrides`` on top (``None``: not given), read once.

    Raises :class:`EncoderSettingsError` (a :class:`UsageError`): one line per bad value
    naming its variable, or its command-line option when ``options`` maps the field to one.
    """
    try:
        return build_settings(EncoderSettings, "ENCODER", overrides, options)
    except InvalidSettings as exc:
        raise EncoderSettingsError(exc.lines) from None

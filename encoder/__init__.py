"""The encoder: one upload in, three Ogg Vorbis renditions published under a content address.

Python API::

    from encoder import ingest
    result = ingest("song.flac", "t1", "file:///srv/origin", tags={"title": "Song"})
    result.status, result.version, result.manifest

The CLI (``encoder ingest|batch|verify|ls``) lives in :mod:`encoder.cli`.
"""

from encoder.errors import (
    ConflictError,
    EncoderError,
    InputError,
    PublishError,
    TranscodeError,
    UsageError,
    VerificationError,
)
from encoder.pipeline import IngestResult, ingest

__all__ = [
    "ConflictError",
    "EncoderError",
    "IngestResult",
    "InputError",
    "PublishError",
    "TranscodeError",
    "UsageError",
    "VerificationError",
    "ingest",
]

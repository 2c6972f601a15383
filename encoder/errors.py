"""The encoder's error tree.

Every failure the encoder reports is one of these, with a message that fits on
one line (the CLI prints ``encoder: error: <message>``)::

    EncoderError
    ├── UsageError          bad arguments or settings (CLI exit 2): track id, profile, store URL
    ├── InputError          the source cannot become renditions (exit 1): empty, not audio,
    │                       no audio stream, truncated or corrupt, too long
    ├── TranscodeError      ffmpeg failed on an input it had accepted, or could not be run
    ├── VerificationError   an encoded rendition (or a stored one) is not what it should be
    ├── PublishError        the store refused or failed a write; nothing new became visible
    └── ConflictError       the track already plays another source (``--replace`` moves it)

Lower-level errors (origin's StoreError, OSError, mutagen's) are mapped at the
edge where they happen with ``raise Mapped(msg) from exc``.
"""

from __future__ import annotations


class EncoderError(Exception):
    """Base class of every error raised by the encoder package."""

    exit_code = 1


class UsageError(EncoderError):
    """An argument or setting that cannot work; the user must change the command."""

    exit_code = 2


class InputError(EncoderError):
    """The source file cannot be encoded: it is empty, not audio, damaged or too long."""


class TranscodeError(EncoderError):
    """ffmpeg could not be run or failed while encoding an accepted input."""


class VerificationError(EncoderError):
    """A rendition does not open, has the wrong format, duration, size or checksum."""


class PublishError(EncoderError):
    """Writing to the object store failed; the new version stays invisible."""


class ConflictError(EncoderError):
    """The track id already plays a different source; moving it needs ``replace=True``."""


def one_line(message: object, limit: int = 400) -> str:
    """Collapse ``message`` to one printable line (CLI errors are exactly one line)."""
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."

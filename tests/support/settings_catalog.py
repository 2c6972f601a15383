"""Every environment variable the parts read, taken from their pydantic-settings classes."""

from __future__ import annotations

from delivery.settings import DeliverySettings
from edge.settings import EdgeSettings
from encoder.settings import EncoderSettings
from origin.settings import OriginSettings

SETTINGS_CLASSES = (
    OriginSettings,
    EncoderSettings,
    DeliverySettings,
    EdgeSettings,
)


def env_names(cls) -> set[str]:
    prefix = cls.model_config.get("env_prefix", "")
    return {f"{prefix}{name}".upper() for name in cls.model_fields}


def all_env_names() -> set[str]:
    names: set[str] = set()
    for cls in SETTINGS_CLASSES:
        names |= env_names(cls)
    return names

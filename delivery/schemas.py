"""Response and request shapes of the v1 API, for the OpenAPI document (``/docs``).

The stream endpoint serialises its answer directly (see :mod:`delivery.streams`);
these models document that shape and validate request bodies.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Loudness(BaseModel):
    integrated_lufs: float | None = None
    true_peak_dbtp: float | None = None
    lra: float | None = None
    track_gain_db: float | None = None


class SignedRendition(BaseModel):
    bitrate_kbps: int = Field(examples=[160], description="The nominal rung")
    url: str
    bytes: int
    avg_bitrate_kbps: float = Field(
        0.0, description="The real average: bytes over duration (a 320 rung may average 213)"
    )


class StreamSource(BaseModel):
    codec: str | None = None
    lossless: bool = False
    bitrate_kbps: float | None = Field(
        None, description="A lossy source's bitrate (no rendition holds more); lossless: null"
    )


class StreamAnswer(BaseModel):
    track_id: str
    version: str = Field(description="16 hex characters; the URLs of a version never change")
    codec: str = Field("vorbis")
    container: str = Field("ogg")
    bitrate_kbps: int = Field(description="The rendition `url` points at")
    requested_kbps: int = Field(description="What the quality asked for (auto: the tier's best)")
    capped: bool = Field(description="True when the requested quality is above the subscription")
    tier: str
    url: str
    expires_at: str = Field(description="RFC 3339 UTC; every URL in the answer expires then")
    duration_s: float
    loudness: Loudness
    source: StreamSource = Field(default_factory=StreamSource)
    renditions: list[SignedRendition] = Field(
        description="Every rendition the caller is entitled to, each signed"
    )


class RenditionInfo(BaseModel):
    bitrate_kbps: int
    bytes: int
    duration_s: float
    avg_bitrate_kbps: float
    sample_rate: int
    channels: int
    content_type: str
    entitled: bool


class SourceSummary(BaseModel):
    codec: str | None = None
    container: str | None = None
    sample_rate: int | None = None
    channels: int | None = None
    duration_s: float = 0.0
    lossless: bool = False


class TrackInfo(BaseModel):
    track_id: str
    version: str
    created_at: str
    published_at: str | None
    duration_s: float
    tags: dict[str, str]
    loudness: Loudness
    source: SourceSummary
    renditions: list[RenditionInfo]
    entitled_bitrates: list[int]


class Me(BaseModel):
    user_id: str
    tier: str
    entitled_bitrates: list[int]


class TierChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: str = Field(min_length=1, max_length=32, examples=["premium"])


class UserTier(BaseModel):
    user_id: str
    tier: str
    updated_at: str | None = Field(description="null: not in the database (default tier)")


class ErrorDetail(BaseModel):
    status: int
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}

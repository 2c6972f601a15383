"""ffmpeg as a streaming client: decode a signed URL straight from the edge, then seek.

ffmpeg reads Ogg over HTTP the way players do: it has no index, so a seek is a
bisection made of ``Range: bytes=N-`` requests. The decoded duration (``time=``
on stderr) is compared with the manifest's, and the edge's access log shows
the ranged requests the seek made.
"""

from __future__ import annotations

import re
import subprocess
import time

import imageio_ffmpeg
import pytest

from tests.e2e.conftest import record_timing
from tests.e2e.stack import Stack

pytestmark = pytest.mark.slow  # end-to-end: left out by `make test-fast`
TIME_RE = re.compile(r"time=(\d+):(\d+):(\d+(?:\.\d+)?)")
TOLERANCE_S = 0.2


def decoded_seconds(stderr: str) -> float:
    """The last ``time=`` ffmpeg printed: how much audio it decoded."""
    found = TIME_RE.findall(stderr)
    assert found, f"no time= in ffmpeg's output:\n{stderr[-2000:]}"
    h, m, s = found[-1]
    return int(h) * 3600 + int(m) * 60 + float(s)


def decode(url: str, *before_input: str) -> tuple[float, float]:
    """(decoded seconds, wall seconds) of ``ffmpeg [opts] -i URL -f null -``."""
    argv = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-hide_banner", "-stats"]
    argv += [*before_input, "-i", url, "-f", "null", "-"]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-2000:]
    return decoded_seconds(done.stderr), wall


@pytest.fixture(scope="module")
def premium_token(stack: Stack) -> str:
    return stack.user_token("premium-user")


def test_ffmpeg_decodes_the_whole_stream_from_the_edge(stack: Stack, premium_token):
    track = stack.tracks["demo-sunrise"]
    answer = stack.stream(premium_token, track.track_id, "high")
    assert answer["bitrate_kbps"] == 320 and not answer["capped"]
    assert answer["url"].startswith(f"{stack.edge_url}/tracks/{track.track_id}/")
    seen = len(stack.edge_access())

    seconds, wall = decode(answer["url"])
    record_timing("ffmpeg: decode 20 s at 320 kbps from the edge (wall)", wall)
    assert abs(seconds - answer["duration_s"]) <= TOLERANCE_S, (seconds, answer["duration_s"])
    assert answer["duration_s"] == pytest.approx(track.duration_s, abs=0.05)

    path = f"/tracks/{track.track_id}/{answer['version']}/320.ogg"
    served = stack.wait_edge_access(
        lambda e: e["path"] == path and e["status"] in (200, 206), timeout=5
    )
    assert served, stack.edge_access()[seen:]
    assert not [e for e in stack.edge_access()[seen:] if e["status"] >= 400]


def test_ffmpeg_seeks_to_the_middle_with_range_requests(stack: Stack, premium_token):
    track = stack.tracks["demo-night-drive"]
    answer = stack.stream(premium_token, track.track_id, "low")
    assert answer["bitrate_kbps"] == 96
    path = f"/tracks/{track.track_id}/{answer['version']}/96.ogg"
    size = next(r["bytes"] for r in answer["renditions"] if r["bitrate_kbps"] == 96)
    seen = len(stack.edge_access())

    middle = answer["duration_s"] / 2
    seconds, wall = decode(answer["url"], "-ss", f"{middle:.3f}")
    record_timing("ffmpeg: -ss to the middle and decode the rest (wall)", wall)
    # What is left after the seek point, decoded without a gap or a restart.
    assert abs(seconds - (answer["duration_s"] - middle)) <= TOLERANCE_S, (seconds, middle)

    stack.flush_edge_access()  # the edge writes its access log every 250 ms
    mine = [e for e in stack.edge_access()[seen:] if e["path"] == path]
    assert mine and all(e["status"] == 206 for e in mine), mine
    starts = [int(e["range"].removeprefix("bytes=").split("-")[0]) for e in mine if e["range"]]
    # Bisection probes the file's middle region: ranges that start well inside the object.
    assert any(size // 4 <= s <= size * 3 // 4 for s in starts), (starts, size)

"""A real ``delivery serve`` process (uvicorn) on a free port, driven over HTTP."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from common.signing_keys import eddsa_verification_key
from edge.token import TokenVerifier
from tests.support.servers import ServerProcess, on_free_port, part_env

pytestmark = pytest.mark.slow  # delivery serve as a process

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def served(tmp_path, media_catalog):
    env = part_env(
        "DELIVERY_",
        DELIVERY_STORE=media_catalog.url,
        DELIVERY_DATA_DIR=str(tmp_path / "data"),
        DELIVERY_DATABASE_URL=f"sqlite:///{tmp_path / 'data' / 'delivery.db'}",
        DELIVERY_EDGE_URL="http://127.0.0.1:9",
        DELIVERY_DEV_MODE="true",  # generated secrets and keys (opt-in)
    )

    def start(port: int) -> tuple[ServerProcess, str]:
        env["DELIVERY_PORT"] = str(port)
        server = ServerProcess(
            "delivery", [sys.executable, "-m", "delivery", "serve"], env=env, cwd=tmp_path
        )
        base = f"http://127.0.0.1:{port}"
        server.wait_http(f"{base}/healthz", timeout=60)
        return server, base

    server, base = on_free_port(start)
    try:
        yield base, env, tmp_path
    finally:
        server.stop()


def cli_token(env: dict, cwd: Path, user: str, tier: str | None = None) -> str:
    args = [sys.executable, "-m", "delivery", "token", "--user", user]
    if tier:
        args += ["--tier", tier]
    done = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_served_end_to_end(served):
    base, env, cwd = served
    data = cwd / "data"
    with httpx.Client(base_url=base, timeout=10) as c:
        assert c.get("/readyz").json()["status"] == "ok"
        premium = cli_token(env, cwd, "pat", "premium")
        free = cli_token(env, cwd, "fred")

        # The "Done when" check: premium gets 320; free asking high gets 160, capped.
        p = c.get(
            "/v1/tracks/sine/stream",
            params={"quality": "high"},
            headers={"Authorization": f"Bearer {premium}"},
        ).json()
        f = c.get(
            "/v1/tracks/sine/stream",
            params={"quality": "high"},
            headers={"Authorization": f"Bearer {free}"},
        ).json()
        assert (p["bitrate_kbps"], p["capped"]) == (320, False)
        assert (f["bitrate_kbps"], f["capped"]) == (160, True)
        assert [r["bitrate_kbps"] for r in p["renditions"]] == [96, 160, 320]
        assert [r["bitrate_kbps"] for r in f["renditions"]] == [96, 160]

        # The edge verifies with the public half of the key generated at first run.
        verifier = TokenVerifier(
            [eddsa_verification_key((data / "keys" / "stream-signing.pub.pem").read_bytes())]
        )
        for r in p["renditions"] + f["renditions"]:
            url = urlsplit(r["url"])
            verifier.verify(parse_qs(url.query)["token"][0], url.path)

        # Dev secrets were generated with mode 0600.
        for secret in (
            data / "secrets" / "user-jwt",
            data / "secrets" / "delivery-admin-token",
            data / "keys" / "stream-signing.pem",
            data / "delivery.db",
        ):
            assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret

        admin = (data / "secrets" / "delivery-admin-token").read_text().strip()
        r = c.put(
            "/v1/admin/users/fred/tier",
            json={"tier": "premium"},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert r.status_code == 200
        f2 = c.get(
            "/v1/tracks/sine/stream",
            params={"quality": "high"},
            headers={"Authorization": f"Bearer {free}"},
        ).json()
        assert f2["bitrate_kbps"] == 320

        missing = c.get("/v1/tracks/nope/stream", headers={"Authorization": f"Bearer {free}"})
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "track_not_found"

        metrics = c.get("/metrics").text
        assert 'delivery_url_signatures_total{signer="edge"} 8.0' in metrics
        assert 'route="/v1/tracks/{track_id}/stream",status="200"' in metrics
        assert 'status="404"' in metrics

        docs = c.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        spec = c.get("/openapi.json").json()
        assert "/v1/tracks/{track_id}/stream" in spec["paths"]
        assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"

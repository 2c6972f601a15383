"""A real nginx with ``secure_link_md5`` accepts the ``nginx`` signer's URLs (issue "Done when")."""

from __future__ import annotations

import secrets
import time

import httpx
import pytest

from delivery.signing.nginx import NginxSecureLinkSigner
from delivery.signing.port import UrlRequest
from tests.delivery.conftest import client_for
from tests.support.servers import ServerProcess, nginx_process, on_free_port

pytestmark = pytest.mark.anyio

PLAIN = "$secure_link_expires$uri $secret"
BOUND = "$secure_link_expires$uri$remote_addr $secret"

HTTP = """
    types {{ audio/ogg ogg; }}
{servers}
"""

SERVER = """
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /tracks/ {{
            secure_link $arg_md5,$arg_expires;
            secure_link_md5 "{expression}";
            if ($secure_link = "")  {{ return 403; }}
            if ($secure_link = "0") {{ return 410; }}
        }}
    }}
"""


@pytest.fixture(scope="module")
def nginx(tmp_path_factory, media_catalog):
    """nginx serving the catalog's files: one plain server, one bound to $remote_addr."""
    prefix = tmp_path_factory.mktemp("nginx")
    secret = secrets.token_hex(16)

    def start(plain: int, bound: int) -> tuple[ServerProcess, dict[str, str]]:
        ports = {"plain": plain, "bound": bound}
        servers = "".join(
            SERVER.format(
                port=ports[name],
                root=media_catalog.root,
                expression=expr.replace("$secret", secret),
            )
            for name, expr in (("plain", PLAIN), ("bound", BOUND))
        )
        server = nginx_process(prefix, HTTP.format(servers=servers))
        base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        # Any answer means it is up (403: no link parameters, as expected).
        server.wait_http(f"{base['plain']}/tracks/x", timeout=30, ok=(403,))
        return server, base

    server, base = on_free_port(start, count=2)
    try:
        yield base, secret
    finally:
        server.stop()


def rendition_bytes(media_catalog, url: str) -> bytes:
    return (media_catalog.root / httpx.URL(url).path.lstrip("/")).read_bytes()


async def test_delivery_signed_urls_are_served_by_nginx(make_app, auth, nginx, media_catalog):
    base, secret = nginx
    app = make_app(
        signer="nginx", nginx_secret=secret, nginx_expression=PLAIN, edge_url=base["plain"]
    )
    async with client_for(app) as c:
        answer = (await c.get("/v1/tracks/sine/stream", headers=auth("nina", "premium"))).json()
    assert [r["bitrate_kbps"] for r in answer["renditions"]] == [96, 160, 320]
    async with httpx.AsyncClient(timeout=10) as http:
        for rendition in answer["renditions"]:
            r = await http.get(rendition["url"])
            assert r.status_code == 200, r.text
            assert r.headers["content-type"] == "audio/ogg"
            assert r.content == rendition_bytes(media_catalog, rendition["url"])
            assert len(r.content) == rendition["bytes"]
        ranged = await http.get(answer["url"], headers={"Range": "bytes=100-199"})
        assert ranged.status_code == 206
        assert ranged.content == rendition_bytes(media_catalog, answer["url"])[100:200]
        assert ranged.headers["content-range"].startswith("bytes 100-199/")
        tail = await http.get(answer["url"], headers={"Range": "bytes=-64"})
        assert tail.status_code == 206 and len(tail.content) == 64


async def test_tampered_other_path_and_expired_links_are_refused(nginx, media_catalog):
    base, secret = nginx
    signer = NginxSecureLinkSigner(base["plain"], secret, PLAIN)
    version = media_catalog.latest("chirp")
    key = f"tracks/chirp/{version}/96.ogg"
    now = int(time.time())
    good = signer.sign(UrlRequest(key, now, now + 600, "u"))
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.get(good)).status_code == 200
        md5 = httpx.URL(good).params["md5"]
        # Flip the FIRST character: the last one of unpadded base64 carries 4 padding
        # bits nginx ignores, so some changes there decode to the same hash.
        flipped = ("A" if md5[0] != "A" else "B") + md5[1:]
        assert (await http.get(good.replace(md5, flipped))).status_code == 403
        # The same signature on another rendition.
        assert (await http.get(good.replace("/96.ogg", "/160.ogg"))).status_code == 403
        # Extending the expiry breaks the hash.
        assert (
            await http.get(good.replace(f"expires={now + 600}", f"expires={now + 6000}"))
        ).status_code == 403
        assert (await http.get(good.split("?")[0])).status_code == 403
        expired = signer.sign(UrlRequest(key, now - 1200, now - 600, "u"))
        assert (await http.get(expired)).status_code == 410
        wrong_secret = NginxSecureLinkSigner(base["plain"], "not-the-secret", PLAIN)
        assert (
            await http.get(wrong_secret.sign(UrlRequest(key, now, now + 60, "u")))
        ).status_code == 403


async def test_client_bound_links(make_app, auth, nginx):
    base, secret = nginx
    app = make_app(
        signer="nginx",
        nginx_secret=secret,
        nginx_expression=BOUND,
        edge_url=base["bound"],
        bind_client_ip=True,
    )
    async with client_for(app) as c:  # the ASGI client is 127.0.0.1, as we are to nginx
        answer = (await c.get("/v1/tracks/chirp/stream", headers=auth())).json()
    signer = NginxSecureLinkSigner(base["bound"], secret, BOUND)
    now = int(time.time())
    key = httpx.URL(answer["url"]).path.lstrip("/")
    elsewhere = signer.sign(
        UrlRequest(key, now, now + 600, "u", client_ip="192.0.2.1", bind_ip=True)
    )
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await http.get(answer["url"])).status_code == 200
        assert (await http.get(elsewhere)).status_code == 403

import json

import pytest

from encoder import ingest
from encoder.notify import events_url, notify_published
from encoder.settings import load_settings
from tests.support.http_stub import QuietHandler, StubServer
from tests.support.servers import free_port


class Recorder(QuietHandler):
    status = 202

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen.append((self.path, self.headers.get("Authorization"), json.loads(body)))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def delivery():
    """A real HTTP server on 127.0.0.1 standing in for delivery's admin events endpoint."""
    with StubServer(Recorder) as stub:
        stub.httpd.seen = []
        stub.httpd.status = 202
        yield stub.httpd


def test_events_url_accepts_base_or_full_url():
    assert events_url("http://d:8000") == "http://d:8000/v1/admin/events"
    assert events_url("http://d:8000/") == "http://d:8000/v1/admin/events"
    assert events_url("http://d/v1/admin/events") == "http://d/v1/admin/events"


@pytest.mark.slow  # ffmpeg encodes
def test_ingest_notifies_delivery_with_the_admin_token(media, store, work_dir, delivery):
    base = f"http://127.0.0.1:{delivery.server_address[1]}"
    settings = load_settings(work_dir=work_dir, notify_url=base, notify_token="s3cret")
    result = ingest(media["mono.flac"], "t1", store, settings=settings)
    assert result.warnings == ()
    assert delivery.seen == [
        (
            "/v1/admin/events",
            "Bearer s3cret",
            {"event": "track.published", "track_id": "t1", "version": result.version},
        )
    ]
    again = ingest(media["mono.flac"], "t1", store, settings=settings)
    assert again.status == "already_published"
    assert len(delivery.seen) == 1  # nothing new to announce


@pytest.mark.slow  # ffmpeg encodes
def test_a_failed_notification_is_a_warning_not_a_failure(media, store, work_dir, delivery):
    delivery.status = 500
    base = f"http://127.0.0.1:{delivery.server_address[1]}"
    settings = load_settings(work_dir=work_dir)
    result = ingest(media["mono.flac"], "t1", store, settings=settings, notify_url=base)
    assert result.status == "published"
    assert any("HTTP 500" in w for w in result.warnings)


def test_unreachable_delivery_is_reported():
    problem = notify_published(f"http://127.0.0.1:{free_port()}", "t1", "0" * 16, timeout_s=2)
    assert problem.startswith("could not notify http://127.0.0.1:")

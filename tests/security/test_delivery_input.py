"""Hostile input to the delivery service: a 4xx JSON error body, never a 500.

* Numbers: every integer parameter of every route (query, path, JSON body, found
  in the app's own OpenAPI document, so a route added tomorrow is covered) is
  declared with bounds, and huge, negative, fractional and non-finite values are
  a 4xx. String parameters get the same values and must not break either.
* Ids: a trailing newline (``re.match`` with ``$`` accepts one) is refused on
  every surface that takes an id: the token's ``sub``, the admin tier route, the
  CLI, track / playlist / user / play ids, follow targets, the key layout. A
  lint keeps ``$``-anchored patterns out of the packages.
* Existence: a private playlist answers a stranger exactly as an unknown id does.
"""

from __future__ import annotations

import ast
import json
import math
import re
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import jwt
import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field, ValidationError

from common.signing_keys import ensure_dev_keypair, kid_for_secret
from delivery.app import create_app
from delivery.auth import mint_user_token
from delivery.modules.ids import new_playlist_id
from delivery.modules.paging import encode_cursor
from delivery.settings import DeliverySettings
from origin.errors import InvalidKey
from origin.keys import (
    latest_key,
    manifest_key,
    parse_key,
    validate_key,
    validate_prefix,
    validate_track_id,
    validate_version,
)
from origin.store import open_store
from tests.delivery.modules.support import publish_manifest
from tests.support.servers import part_env, run_part_cli

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s" * 48
ADMIN = "admin-token-for-hostile-input-tests"
ISSUER, AUDIENCE = "audiocdn-test", "delivery-test"
TRACK = "hostile-track"
ME, STRANGER, FRIEND = "alice", "mallory", "bob"


def token_for(sub: Any, **claims: Any) -> str:
    now = int(time.time())
    body = {"sub": sub, "iat": now, "exp": now + 600, "iss": ISSUER, "aud": AUDIENCE, **claims}
    return jwt.encode(
        body, SECRET.encode(), algorithm="HS256", headers={"kid": kid_for_secret(SECRET.encode())}
    )


def bearer(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(user)}"}


ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("hostile")
    store_url = (root / "origin").as_uri()
    store = open_store(store_url)
    version = publish_manifest(store, TRACK, title="Hostile", artist="Input")
    settings = DeliverySettings(
        dev_mode=False,
        data_dir=root / "data",
        store=store_url,
        database_url=f"sqlite:///{root / 'delivery.db'}",
        jwt_hs256_secrets=[SECRET],
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        admin_tokens=[ADMIN],
        signing_key_file=ensure_dev_keypair(root / "keys")[0],
        edge_url="http://edge.test:8080",
        rate_limit_per_s=0,
    )
    app = create_app(settings)
    app.state.services.modules.track_index.sync()
    client = TestClient(app, raise_server_exceptions=False, base_url="http://delivery.test")
    r = client.post("/v1/me/playlists", json={"name": "mine", "public": False}, headers=bearer(ME))
    assert r.status_code == 201, r.text
    private = r.json()["id"]
    r = client.post(
        f"/v1/playlists/{private}/items",
        json={"uris": [f"audiocdn:track:{TRACK}"]},
        headers=bearer(ME),
    )
    assert r.status_code == 201, r.text
    yield SimpleNamespace(
        app=app, client=client, store=store, version=version, private=private, root=root
    )
    client.close()
    app.state.services.db.close()


def assert_error_body(r, *, status: range | int = range(400, 500)) -> dict:
    statuses = status if isinstance(status, range) else range(status, status + 1)
    assert r.status_code in statuses, (r.request.method, str(r.request.url)[:300], r.text[:300])
    body = r.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert err["status"] == r.status_code and isinstance(err["code"], str) and err["message"]
    return err


def assert_no_server_error(r) -> None:
    assert r.status_code < 500, (r.request.method, str(r.request.url)[:300], r.text[:300])
    if r.status_code >= 400:
        assert_error_body(r)


# -- the OpenAPI document, walked ---------------------------------------------------------


def app_routes(routes, prefix: str = ""):
    """(path, methods, route) of every route, hidden aliases too, through included routers."""
    for route in routes:
        inner = getattr(route, "original_router", None)  # FastAPI >= 0.16x: routers nest
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from app_routes(inner.routes, prefix + getattr(context, "prefix", ""))
        elif getattr(route, "path", None) is not None:
            yield prefix + route.path, set(getattr(route, "methods", None) or ()), route


def operations(app) -> list[tuple[str, str, dict]]:
    """(method, path, OpenAPI operation) of every route; a hidden alias (``/tracks`` for
    ``/items``) gets the operation of the documented route with the same endpoint."""
    documented = app.openapi()["paths"]
    out = []
    for path, item in documented.items():
        for method, op in item.items():
            if method in ("get", "put", "post", "delete", "patch"):
                out.append((method.upper(), path, op))
    by_endpoint = {}
    for path, methods, route in app_routes(app.routes):
        for method in methods:
            op = documented.get(path, {}).get(method.lower())
            if op is not None:
                by_endpoint[(getattr(route, "endpoint", None), method)] = op
    for path, methods, route in app_routes(app.routes):
        for method in methods - {"HEAD"}:
            if method.lower() not in documented.get(path, {}):
                op = by_endpoint.get((getattr(route, "endpoint", None), method))
                if op is not None:
                    out.append((method, path, op))
    assert len(out) > 40  # the whole API, not an empty document
    return out


def resolve(schema: dict, doc: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    return schema


def branches(schema: dict, doc: dict) -> list[dict]:
    schema = resolve(schema, doc)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return [b for s in schema[key] for b in branches(s, doc)]
    return [schema]


def numeric_branch(schema: dict, doc: dict) -> dict | None:
    for b in branches(schema, doc):
        if b.get("type") in ("integer", "number"):
            return b
    return None


def numeric_leaves(schema: dict, doc: dict, path: tuple = ()):
    """(path, numeric schema) of every number a JSON body may hold; path: names and 0s."""
    for b in branches(schema, doc):
        kind = b.get("type")
        if kind in ("integer", "number"):
            yield path, b
        elif kind == "array" and "items" in b:
            yield from numeric_leaves(b["items"], doc, (*path, 0))
        elif kind == "object" or "properties" in b:
            for name, sub in b.get("properties", {}).items():
                yield from numeric_leaves(sub, doc, (*path, name))


# Plausible values for the fields our bodies name, so a request reaches the number.
FIELD_VALUES = {
    "play_id": "hostile-play",
    "track_id": TRACK,
    "uri": f"audiocdn:track:{TRACK}",
    "uris": [f"audiocdn:track:{TRACK}"],
    "name": "hostile",
    "tier": "premium",
    "event": "track.published",
    "ms_played": 1000,
}


# Valid bodies of the routes we know, so each hostile number gets past the other checks;
# a route added later gets one built from its schema (example()).
BASE_BODIES = {
    ("POST", "/v1/me/plays"): {"play_id": "hostile-play", "track_id": TRACK, "ms_played": 1000},
    ("POST", "/v1/playlists/{playlist_id}/items"): {"uris": [f"audiocdn:track:{TRACK}"]},
    ("PUT", "/v1/playlists/{playlist_id}/items"): {"range_start": 0, "insert_before": 0},
    ("DELETE", "/v1/playlists/{playlist_id}/items"): {"positions": [0]},
}


def example(schema: dict, doc: dict, name: str | None = None) -> Any:
    if name in FIELD_VALUES:
        return FIELD_VALUES[name]
    b = next((b for b in branches(schema, doc) if b.get("type") != "null"), {})
    kind = b.get("type")
    if kind == "object" or "properties" in b:
        required = b.get("required", [])
        return {k: example(v, doc, k) for k, v in b.get("properties", {}).items() if k in required}
    return {"string": "x", "integer": 0, "number": 0, "boolean": False, "array": []}.get(kind)


def put_at(value: Any, path: tuple, leaf: Any, schema: dict, doc: dict) -> Any:
    """``value`` with ``leaf`` at ``path`` (building arrays and objects on the way)."""
    if not path:
        return leaf
    head, rest = path[0], path[1:]
    b = next((b for b in branches(schema, doc) if b.get("type") != "null"), {})
    if head == 0:
        item_schema = b.get("items", {})
        return [put_at(example(item_schema, doc), rest, leaf, item_schema, doc)]
    sub = b.get("properties", {}).get(head, {})
    current = dict(value) if isinstance(value, dict) else {}
    current[head] = put_at(current.get(head, example(sub, doc, head)), rest, leaf, sub, doc)
    return current


# Sent as query/path text and as raw JSON tokens. Python's json module reads
# Infinity, NaN and 1e999 (inf); 5000 digits exceed int()'s default digit limit.
HOSTILE_NUMBERS = [
    "9223372036854775808",  # 2**63: one past SQLite's INTEGER
    "-9223372036854775809",
    "18446744073709551616",
    "1" + "0" * 30,
    "-" + "9" * 30,
    "2147483648",
    "-1",
    "1.5",
    "1e309",
    "-1e999",
    "Infinity",
    "-Infinity",
    "NaN",
    "9" * 5000,
]
TEXT_ONLY = ["inf", "nan", "0x10", "1_000_000_000_000_000_000_000", "+1e400"]


def must_refuse(value: str, schema: dict) -> bool:
    """True when ``value`` lies outside what ``schema`` (integer or number) admits."""
    if "_" in value or value.startswith("0x"):
        return False  # Python-isms a lenient parser may read; only "never a 500" holds
    try:
        number = float(value)
    except ValueError:
        return True
    if not math.isfinite(number):
        return True
    if schema.get("type") == "integer" and not re.fullmatch(r"-?[0-9]+", value):
        return True
    exact = int(value) if re.fullmatch(r"-?[0-9]+", value) else number
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    return (low is not None and exact < low) or (high is not None and exact > high)


def fill_path(path: str, stack, override: tuple[str, str] | None = None) -> str:
    values = {"track_id": TRACK, "playlist_id": stack.private, "user_id": ME, "name": "player.js"}

    def one(m: re.Match) -> str:
        name = m[1]
        if override is not None and name == override[0]:
            return quote(override[1], safe="")
        return values.get(name, "x")

    return re.sub(r"\{(\w+)\}", one, path)


def auth_for(path: str) -> dict[str, str]:
    return ADMIN_AUTH if path.startswith("/v1/admin") else bearer(ME)


# -- 1. numbers ---------------------------------------------------------------------------


def test_every_integer_parameter_and_body_field_declares_its_bounds(stack):
    doc = stack.app.openapi()
    unbounded = []
    for method, path, op in operations(stack.app):
        for param in op.get("parameters", []):
            b = numeric_branch(param.get("schema", {}), doc)
            if b is not None and not (
                ("minimum" in b or "exclusiveMinimum" in b)
                and ("maximum" in b or "exclusiveMaximum" in b)
            ):
                unbounded.append(f"{method} {path} {param['in']}:{param['name']}")
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body:
            for leaf_path, b in numeric_leaves(body["schema"], doc):
                if not (
                    ("minimum" in b or "exclusiveMinimum" in b)
                    and ("maximum" in b or "exclusiveMaximum" in b)
                ):
                    unbounded.append(f"{method} {path} body:{'.'.join(map(str, leaf_path))}")
    assert unbounded == []


@pytest.mark.slow
def test_hostile_numbers_in_every_query_and_path_parameter(stack):
    doc = stack.app.openapi()
    client = stack.client
    checked = 0
    for method, path, op in operations(stack.app):
        params = list(op.get("parameters", []))
        for param in params:
            schema = numeric_branch(param.get("schema", {}), doc)
            for value in HOSTILE_NUMBERS + TEXT_ONLY:
                if param["in"] == "query":
                    url = fill_path(path, stack) + f"?{param['name']}={quote(value, safe='')}"
                elif param["in"] == "path":
                    url = fill_path(path, stack, (param["name"], value))
                else:
                    continue
                r = client.request(method, url, headers=auth_for(path))
                assert_no_server_error(r)
                if schema is not None and must_refuse(value, schema):
                    assert_error_body(r)
                checked += 1
    assert checked > 500


@pytest.mark.slow
def test_hostile_numbers_in_every_json_body_field(stack):
    doc = stack.app.openapi()
    client = stack.client
    sentinel = "__HOSTILE_NUMBER__"
    checked = 0
    for method, path, op in operations(stack.app):
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if not body:
            continue
        schema = body["schema"]
        base = BASE_BODIES.get((method, path.replace("/tracks", "/items"))) or example(schema, doc)
        for leaf_path, leaf_schema in numeric_leaves(schema, doc):
            text = json.dumps(put_at(base, leaf_path, sentinel, schema, doc))
            for value in HOSTILE_NUMBERS:
                r = client.request(
                    method,
                    fill_path(path, stack),
                    content=text.replace(f'"{sentinel}"', value),
                    headers={**auth_for(path), "Content-Type": "application/json"},
                )
                assert_no_server_error(r)
                if must_refuse(value, leaf_schema):
                    assert_error_body(r)
                checked += 1
        # The whole body one hostile number.
        for value in HOSTILE_NUMBERS:
            r = client.request(
                method,
                fill_path(path, stack),
                content=value,
                headers={**auth_for(path), "Content-Type": "application/json"},
            )
            assert_error_body(r)
    assert checked > 100


@pytest.mark.parametrize("param", ["before", "after"])
@pytest.mark.parametrize(
    "value",
    [
        "9223372036854775808",
        "18446744073709551616",
        "99999999999999999999999999",
        "-1",
        encode_cursor(2**63, "p1"),
        encode_cursor(-1, "p1"),
    ],
)
def test_recently_played_cursors_out_of_range_are_400(stack, param, value):
    r = stack.client.get("/v1/me/player/recently-played", params={param: value}, headers=bearer(ME))
    assert assert_error_body(r, status=400)["code"] == "invalid_cursor"


def test_friends_listened_cursor_out_of_range_is_400(stack):
    for at in (2**63, 10**30, -(2**63) - 1):
        r = stack.client.get(
            f"/v1/tracks/{TRACK}/friends-listened",
            params={"before": encode_cursor(at, FRIEND)},
            headers=bearer(ME),
        )
        assert assert_error_body(r, status=400)["code"] == "invalid_cursor"


def test_overflow_keeps_the_connection_a_plain_400(stack):
    """The original report: 2**63 as ``before`` was a 500 (OverflowError)."""
    for param in ("before", "after"):
        r = stack.client.get(
            f"/v1/me/player/recently-played?{param}=9223372036854775808", headers=bearer(ME)
        )
        assert r.status_code == 400 and r.headers["content-type"].startswith("application/json")


# -- 2. ids with a trailing newline ----------------------------------------------------------


NL = "\n"
URI_NL = f"audiocdn:track:{TRACK}\n"
PLAY = {"play_id": "nl-1", "track_id": TRACK, "ms_played": 1000}
# (method, url, request keywords); "{p}" is the private playlist, "{v}" the track's version.
NEWLINE_CASES = {
    # user ids: the admin tier route, user pages, creating for someone
    "admin-set-tier": ("PUT", "/v1/admin/users/bob%0A/tier", {"json": {"tier": "premium"}}),
    "admin-get-user": ("GET", "/v1/admin/users/bob%0A", {}),
    "user-playlists": ("GET", "/v1/users/bob%0A/playlists", {}),
    "user-followers": ("GET", "/v1/users/bob%0A/followers", {}),
    "user-following": ("GET", "/v1/users/bob%0A/following", {}),
    "create-for-user": ("POST", "/v1/users/alice%0A/playlists", {"json": {"name": "x"}}),
    # follow targets and other lists of user ids
    "follow-query": ("PUT", "/v1/me/following", {"params": {"type": "user", "ids": "bob" + NL}}),
    "follow-body": (
        "PUT",
        "/v1/me/following",
        {"params": {"type": "user"}, "json": {"ids": ["bob" + NL]}},
    ),
    "unfollow": ("DELETE", "/v1/me/following", {"params": {"type": "user", "ids": "bob" + NL}}),
    "following-contains": (
        "GET",
        "/v1/me/following/contains",
        {"params": {"type": "user", "ids": "bob" + NL}},
    ),
    "add-collaborator": ("PUT", "/v1/playlists/{p}/collaborators", {"params": {"ids": "bob\n"}}),
    "remove-collaborator": (
        "DELETE",
        "/v1/playlists/{p}/collaborators",
        {"params": {"ids": "bob" + NL}},
    ),
    "followers-contain": (
        "GET",
        "/v1/playlists/{p}/followers/contains",
        {"params": {"ids": "bob" + NL}},
    ),
    # track ids and versions
    "stream": ("GET", f"/v1/tracks/{TRACK}%0A/stream", {}),
    "track-info": ("GET", f"/v1/tracks/{TRACK}%0A", {}),
    "stream-version": ("GET", f"/v1/tracks/{TRACK}/stream", {"params": {"version": "{v}\n"}}),
    "friends-listened": ("GET", f"/v1/tracks/{TRACK}%0A/friends-listened", {}),
    "add-items-body": ("POST", "/v1/playlists/{p}/items", {"json": {"uris": [URI_NL]}}),
    "add-items-query": ("POST", "/v1/playlists/{p}/items", {"params": {"uris": URI_NL}}),
    "replace-items": ("PUT", "/v1/playlists/{p}/items", {"json": {"uris": [URI_NL]}}),
    "remove-items": ("DELETE", "/v1/playlists/{p}/items", {"json": {"tracks": [{"uri": URI_NL}]}}),
    "play-track-id": ("POST", "/v1/me/plays", {"json": {**PLAY, "track_id": TRACK + NL}}),
    "play-uri": (
        "POST",
        "/v1/me/plays",
        {"json": {k: v for k, v in PLAY.items() if k != "track_id"} | {"uri": URI_NL}},
    ),
    "admin-event": (
        "POST",
        "/v1/admin/events",
        {"json": {"event": "track.published", "track_id": TRACK + NL}},
    ),
    # play ids
    "play-id": ("POST", "/v1/me/plays", {"json": {**PLAY, "play_id": "nl-1" + NL}}),
    # playlist ids
    "get-playlist": ("GET", "/v1/playlists/{p}%0A", {}),
    "change-playlist": ("PUT", "/v1/playlists/{p}%0A", {"json": {"name": "x"}}),
    "playlist-items": ("GET", "/v1/playlists/{p}%0A/items", {}),
    "playlist-add": (
        "POST",
        "/v1/playlists/{p}%0A/items",
        {"json": {"uris": [f"audiocdn:track:{TRACK}"]}},
    ),
    "follow-playlist": ("PUT", "/v1/playlists/{p}%0A/followers", {}),
    "unfollow-playlist": ("DELETE", "/v1/playlists/{p}%0A/followers", {}),
    "collaborators": ("GET", "/v1/playlists/{p}%0A/collaborators", {}),
    # after a fixed segment: Starlette routes with re.match and "$" (delivery.requestguard)
    "me": ("GET", "/v1/me%0A", {}),
    "admin-tier-suffix": ("PUT", "/v1/admin/users/bob/tier%0A", {"json": {"tier": "premium"}}),
}


def _fill(value: Any, stack) -> Any:
    if isinstance(value, str):
        return value.replace("{p}", stack.private).replace("{v}", stack.version)
    if isinstance(value, dict):
        return {k: _fill(v, stack) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_fill(v, stack) for v in value)
    return value


@pytest.mark.parametrize("case", sorted(NEWLINE_CASES))
def test_a_trailing_newline_is_refused_on_every_id_surface(stack, case):
    method, url, kw = _fill(NEWLINE_CASES[case], stack)
    r = stack.client.request(method, url, headers=auth_for(url), **kw)
    assert_error_body(r)
    # Nothing was written for bob, with or without the newline.
    r = stack.client.get(f"/v1/admin/users/{FRIEND}", headers=ADMIN_AUTH)
    assert r.json()["updated_at"] is None
    r = stack.client.get("/v1/me/following", params={"type": "user"}, headers=bearer(ME))
    assert r.json()["users"]["items"] == []


@pytest.mark.parametrize("sub", [ME + "\n", ME + "\r\n", "\n" + ME, ME + "\x00", ME + " "])
def test_a_token_sub_with_a_newline_names_no_user(stack, sub):
    r = stack.client.get("/v1/me", headers={"Authorization": f"Bearer {token_for(sub)}"})
    assert_error_body(r, status=401)
    with pytest.raises(ValueError):
        mint_user_token(SECRET.encode(), sub, ttl_s=60, issuer=ISSUER, audience=AUDIENCE)


@pytest.mark.slow
def test_the_cli_refuses_a_user_id_with_a_trailing_newline(tmp_path):
    env = part_env(
        "DELIVERY_",
        DELIVERY_DEV_MODE="true",
        DELIVERY_DATA_DIR=str(tmp_path / "data"),
        DELIVERY_DATABASE_URL=f"sqlite:///{tmp_path / 'delivery.db'}",
    )
    for args in (["users", "set-tier", "alice\n", "premium"], ["token", "--user", "alice\n"]):
        done = run_part_cli("delivery", args, cwd=tmp_path, env=env, timeout=120)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "invalid user id" in done.stderr
        assert done.stdout == ""


@pytest.mark.parametrize(
    "check, value",
    [
        (validate_track_id, "song\n"),
        (validate_version, "0123456789abcdef\n"),
        (validate_key, "tracks/song/latest.json\n"),
        (validate_key, "tracks/song/0123456789abcdef/manifest.json\n"),
        (validate_key, "tracks/song/0123456789abcdef/160.ogg\n"),
        (parse_key, "tracks/song\n/latest.json"),
        (validate_prefix, "tracks/\n"),
        (validate_prefix, "tracks/song/\n"),
        (latest_key, "song\n"),
        (lambda v: manifest_key("song", v), "0123456789abcdef\n"),
    ],
)
def test_the_key_layout_refuses_a_trailing_newline(check, value):
    with pytest.raises(InvalidKey):
        check(value)


def test_pydantic_patterns_anchor_at_the_very_end():
    """Rust's regex (pydantic-core's default engine) has no "before a final newline" ``$``.

    Python's ``re`` engine (``regex_engine="python-re"``) searches with ``$`` semantics
    that accept ``"abc\\n"``; the lint below keeps it out of the packages.
    """

    class Model(BaseModel):
        value: str = Field(pattern=r"^[a-z]+$")

    assert Model(value="abc").value == "abc"
    with pytest.raises(ValidationError):
        Model(value="abc\n")


# -- the lint: no "$"-anchored pattern that a trailing newline slips past ----------------------

PACKAGES = ("origin", "edge", "delivery", "encoder")
_RE_FUNCS = {"compile", "match", "search", "fullmatch", "sub", "subn", "split", "findall"}


def _ends_with_dollar(pattern: str) -> bool:
    stripped = pattern.rstrip(")")
    return stripped.endswith("$") and not stripped.endswith("\\$")


def _multiline(call: ast.Call) -> bool:
    """``re.M``: ``$`` is meant as "end of a line" (parsing text, not validating a value)."""
    return re.search(r"\bre\.(M|MULTILINE)\b", ast.unparse(call)) is not None


def _literal(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):  # an rf-string: its literal tail is what matters
        parts = [v.value for v in node.values if isinstance(v, ast.Constant)]
        return "".join(parts) if parts else None
    return None


def test_no_pattern_in_the_packages_ends_with_a_dollar_anchor():
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    func = node.func
                    is_re = (
                        isinstance(func, ast.Attribute)
                        and isinstance(func.value, ast.Name)
                        and func.value.id == "re"
                        and func.attr in _RE_FUNCS
                    )
                    if is_re and node.args:
                        pattern = _literal(node.args[0])
                        if pattern and _ends_with_dollar(pattern) and not _multiline(node):
                            offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
                    for kw in node.keywords:
                        value = _literal(kw.value)
                        if kw.arg == "pattern" and value and _ends_with_dollar(value):
                            offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} pattern=")
                        if kw.arg == "regex_engine" and value == "python-re":
                            offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} python-re")
    assert offenders == [], "use re.fullmatch (or \\Z): '$' also matches before a trailing newline"


# -- 3. a private playlist looks exactly like an unknown one ------------------------------------


def playlist_requests(stack) -> list[tuple[str, str, dict]]:
    """One plausible request per playlist route (every route naming {playlist_id})."""
    bodies = {
        ("PUT", "/v1/playlists/{playlist_id}"): {"json": {"name": "taken"}},
        ("POST", "/v1/playlists/{playlist_id}/items"): {
            "json": {"uris": [f"audiocdn:track:{TRACK}"]}
        },
        ("PUT", "/v1/playlists/{playlist_id}/items"): {
            "json": {"range_start": 0, "insert_before": 1}
        },
        ("DELETE", "/v1/playlists/{playlist_id}/items"): {
            "json": {"tracks": [{"uri": f"audiocdn:track:{TRACK}"}]}
        },
        ("GET", "/v1/playlists/{playlist_id}/followers/contains"): {"params": {"ids": ME}},
        ("PUT", "/v1/playlists/{playlist_id}/collaborators"): {"params": {"ids": FRIEND}},
        ("DELETE", "/v1/playlists/{playlist_id}/collaborators"): {"params": {"ids": FRIEND}},
    }
    out = []
    for path, methods, _route in app_routes(stack.app.routes):
        if "{playlist_id}" not in path:
            continue
        for method in sorted(methods - {"HEAD"}):
            generic = path.replace("/tracks", "/items") if path.endswith("/tracks") else path
            out.append((method, path, bodies.get((method, generic), {})))
    assert len(out) >= 15
    return out


def test_a_strangers_request_on_a_private_playlist_is_an_unknown_ids_404(stack):
    client = stack.client
    unknown = new_playlist_id()
    for method, path, kw in playlist_requests(stack):
        answers = []
        for playlist_id in (stack.private, unknown):
            url = path.replace("{playlist_id}", playlist_id)
            r = client.request(method, url, headers=bearer(STRANGER), **kw)
            err = assert_error_body(r, status=404)
            answers.append((r.status_code, err["code"], err["message"].replace(playlist_id, "ID")))
        assert answers[0] == answers[1], (method, path, answers)
    # The owner still sees it, and nothing the stranger did changed it.
    r = client.get(f"/v1/playlists/{stack.private}", headers=bearer(ME))
    assert r.status_code == 200 and r.json()["followers"]["total"] == 0
    assert r.json()["tracks"]["total"] == 1


# -- bodies and queries the parser or the database cannot take -------------------------

DEEP = b"[" * 200_000 + b"]" * 200_000


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/me/playlists", DEEP),
        ("POST", "/v1/me/playlists", b'{"name": {"a": ' * 100 + b"1" + b"}" * 100 + b"}"),
        ("POST", "/v1/me/playlists", b'{"name": "\\ud800"}'),
        ("POST", "/v1/me/playlists", b'{"name": "a\\u0000b"}'),
        ("POST", "/v1/me/playlists", b'{"name": "ok", "description": "\\udfff"}'),
        ("POST", "/v1/me/plays", b'{"items": [{"track_id": "\\u0000"}]}'),
        ("PUT", "/v1/me/following?type=user", b'{"ids": ["\\ud83d"]}'),
        ("POST", "/v1/admin/events", DEEP),
        ("POST", "/v1/dev/token", DEEP),
    ],
)
def test_json_the_database_cannot_store_is_a_400(stack, method, path, body):
    headers = {"content-type": "application/json", **auth_for(path)}
    r = stack.client.request(method, path, content=body, headers=headers)
    error = assert_error_body(r, status=400)
    assert error["code"] == "invalid_request"


@pytest.mark.parametrize(
    "query",
    ["q=a%00b", "q=abc%0Adef", "q=%7F", "ids=bob%00", "limit=1%00"],
)
def test_control_characters_in_a_query_are_a_400(stack, query):
    path = "/v1/search" if query.startswith(("q=", "limit=")) else "/v1/me/following/contains"
    r = stack.client.get(f"{path}?{query}", headers=bearer(ME))
    assert assert_error_body(r, status=400)["code"] == "invalid_request"


def test_a_surrogate_pair_and_plain_unicode_still_work(stack):
    body = json.dumps({"name": "Pl\u00e4y \U0001f3b5 \u97f3\u697d"}).encode()  # escaped pair
    r = stack.client.post(
        "/v1/me/playlists",
        content=body,
        headers={"content-type": "application/json", **bearer(ME)},
    )
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "Pl\u00e4y \U0001f3b5 \u97f3\u697d"


def test_depth_scan_ignores_brackets_inside_strings():
    from delivery.requestguard import depth_exceeds

    assert not depth_exceeds(b'{"a": "' + b"[" * 500 + b'"}', 64)
    assert not depth_exceeds(b'{"a": "\\"[[[[[["}', 3)
    assert depth_exceeds(b"[" * 65, 64)
    assert not depth_exceeds(b"[" * 64 + b"]" * 64, 64)

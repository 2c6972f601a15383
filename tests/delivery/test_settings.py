"""Settings are read once and validated loudly, naming the variable to fix."""

from __future__ import annotations

import pytest

from delivery.settings import SettingsError, load_settings, require_user_token_keys


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith("DELIVERY_"):
            monkeypatch.delenv(name)


def test_defaults(monkeypatch):
    monkeypatch.setenv("DELIVERY_JWT_HS256_SECRETS", "s" * 32)  # dev mode is off by default
    s = load_settings()
    assert (s.host, s.port, s.signer, s.edge_url) == (
        "127.0.0.1",
        8000,
        "edge",
        "http://127.0.0.1:8080",
    )
    assert s.database_url == "sqlite:///./data/delivery.db"
    assert s.store == "file://./data/origin"
    assert (s.url_ttl_s, s.url_ttl_max_s, s.url_ttl_duration_factor) == (900, 86400, 2.0)
    assert s.entitlements == {"free": [96, 160], "premium": [96, 160, 320]}
    assert s.jwt_algorithms == ["HS256", "RS256", "ES256", "EdDSA"]
    assert s.dev_mode is False and s.dev_mode_allow_remote is False
    assert s.bind_client_ip is False


def test_without_dev_mode_or_secrets_serving_fails_in_one_line_naming_what_to_set(
    make_settings,
):
    from delivery.app import create_app

    # Commands that verify no user token (catalog sync, events, config) load these settings.
    settings = load_settings()
    assert not settings.dev_mode and not settings.jwt_hs256_secrets
    with pytest.raises(SettingsError) as err:
        require_user_token_keys(settings)
    message = str(err.value)
    assert "\n" not in message
    for name in ("DELIVERY_JWKS", "DELIVERY_JWT_HS256_SECRETS", "DELIVERY_DEV_MODE=true"):
        assert name in message
    with pytest.raises(SettingsError, match="DELIVERY_JWT_HS256_SECRETS"):
        create_app(make_settings(jwt_hs256_secrets=[]))


def test_every_bad_value_is_one_line_naming_its_variable(monkeypatch):
    monkeypatch.setenv("DELIVERY_PORT", "abc")
    monkeypatch.setenv("DELIVERY_PLAYLIST_PAGE_MAX", "0")
    monkeypatch.setenv("DELIVERY_ENTITLEMENTS", "not json")
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value) == "DELIVERY_ENTITLEMENTS: not valid JSON"
    monkeypatch.delenv("DELIVERY_ENTITLEMENTS")
    with pytest.raises(SettingsError) as err:
        load_settings()
    lines = str(err.value).splitlines()
    assert [line.split(":")[0] for line in lines] == ["DELIVERY_PORT", "DELIVERY_PLAYLIST_PAGE_MAX"]


def test_environment_is_parsed(monkeypatch):
    monkeypatch.setenv("DELIVERY_JWT_HS256_SECRETS", "s" * 32)
    monkeypatch.setenv("DELIVERY_JWT_ALGORITHMS", "EdDSA, HS256")
    monkeypatch.setenv(
        "DELIVERY_ENTITLEMENTS", '{"free": [96], "plus": [96, 160], "premium": [320, 96]}'
    )
    monkeypatch.setenv("DELIVERY_EDGE_URL", "https://cdn.example/audio/")
    monkeypatch.setenv("DELIVERY_TIER_CLAIM", "")
    monkeypatch.setenv("DELIVERY_ADMIN_TOKENS", "a" * 20 + "," + "b" * 20)
    s = load_settings()
    assert s.jwt_algorithms == ["EdDSA", "HS256"]
    assert s.entitlements["premium"] == [96, 320]
    assert s.edge_url == "https://cdn.example/audio"
    assert s.tier_claim is None
    assert len(s.admin_tokens) == 2


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DELIVERY_JWT_ALGORITHMS": "HS256,none"}, "DELIVERY_JWT_ALGORITHMS"),
        ({"DELIVERY_JWT_ALGORITHMS": "HS384"}, "DELIVERY_JWT_ALGORITHMS"),
        ({"DELIVERY_JWT_HS256_SECRETS": "short"}, "DELIVERY_JWT_HS256_SECRETS"),
        ({"DELIVERY_ENTITLEMENTS": '{"free": [100]}'}, "DELIVERY_ENTITLEMENTS"),
        ({"DELIVERY_ENTITLEMENTS": '{"Gold Tier": [96]}'}, "DELIVERY_ENTITLEMENTS"),
        ({"DELIVERY_ENTITLEMENTS": "not json"}, "DELIVERY_ENTITLEMENTS"),
        ({"DELIVERY_QUALITY_BITRATES": '{"low": 96}'}, "DELIVERY_QUALITY_BITRATES"),
        ({"DELIVERY_DEFAULT_TIER": "gold"}, "default_tier"),
        ({"DELIVERY_EDGE_URL": "ftp://x"}, "DELIVERY_EDGE_URL"),
        ({"DELIVERY_EDGE_URL": "http://x/?a=1"}, "DELIVERY_EDGE_URL"),
        ({"DELIVERY_URL_TTL_MAX_S": "90000"}, "DELIVERY_URL_TTL_MAX_S"),
        ({"DELIVERY_URL_TTL_S": "5"}, "DELIVERY_URL_TTL_S"),
        ({"DELIVERY_PORT": "70000"}, "DELIVERY_PORT"),
        ({"DELIVERY_SIGNER": "akamai"}, "DELIVERY_SIGNER"),
        ({"DELIVERY_SIGNER": "cloudfront"}, "DELIVERY_CLOUDFRONT_KEY_PAIR_ID"),
        ({"DELIVERY_SIGNER": "cloudcdn"}, "DELIVERY_CLOUDCDN_KEY_NAME"),
        ({"DELIVERY_JWKS": "/no/such/jwks.json"}, "DELIVERY_JWKS"),
        ({"DELIVERY_PLAYLIST_PAGE_MAX": "0"}, "DELIVERY_PLAYLIST_PAGE_MAX"),
        ({"DELIVERY_EVENTS_POLL_S": "0"}, "DELIVERY_EVENTS_POLL_S"),
        (
            {
                "DELIVERY_DEV_MODE": "false",
                "DELIVERY_SIGNER": "nginx",
                "DELIVERY_JWT_HS256_SECRETS": "s" * 32,
            },
            "DELIVERY_NGINX_SECRET",
        ),
    ],
)
def test_bad_settings_name_the_variable(monkeypatch, env, variable):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert variable in str(err.value)


def test_start_up_fails_on_a_missing_signing_key(make_settings, tmp_path):
    from delivery.app import create_app

    with pytest.raises(SettingsError, match="DELIVERY_SIGNING_KEY_FILE"):
        create_app(make_settings(signing_key_file=tmp_path / "nope.pem"))


def test_start_up_fails_on_a_key_of_the_wrong_kind(make_settings, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from delivery.app import create_app

    pem = tmp_path / "ec.pem"
    pem.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(SettingsError, match="Ed25519"):
        create_app(make_settings(signing_key_file=pem))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {
                "signer": "nginx",
                "nginx_secret": "x",
                "nginx_expression": "$secure_link_expires$uri$host",
            },
            "host",
        ),
        ({"signer": "nginx", "nginx_secret": "x", "bind_client_ip": True}, "remote_addr"),
        ({"signer": "s3"}, "file://"),
        (
            {"signer": "cloudcdn", "cloudcdn_key_name": "k", "cloudcdn_key": "not base64!!"},
            "base64",
        ),
        ({"signer": "cloudcdn", "cloudcdn_key_name": "k", "cloudcdn_key": "c2hvcnQ="}, "16-byte"),
        ({"database_url": "mysql://x"}, "DELIVERY_DATABASE_URL"),
        ({"store": "ftp://x"}, "DELIVERY_STORE"),
        ({"admin_tokens": ["short"]}, "DELIVERY_ADMIN_TOKENS"),
    ],
)
def test_signer_and_backend_problems_fail_at_start_up(make_settings, overrides, message):
    from delivery.app import create_app

    with pytest.raises(SettingsError, match=message):
        create_app(make_settings(**overrides))


def test_dev_mode_generates_what_is_missing(tmp_path, media_catalog):
    import stat

    from delivery.app import create_app
    from delivery.settings import DeliverySettings

    settings = DeliverySettings(
        dev_mode=True,
        data_dir=tmp_path / "data",
        store=media_catalog.url,
        database_url=f"sqlite:///{tmp_path / 'd.db'}",
        signer="nginx",
    )
    app = create_app(settings)
    for path in ("secrets/user-jwt", "secrets/delivery-admin-token", "secrets/nginx-secure-link"):
        assert stat.S_IMODE((tmp_path / "data" / path).stat().st_mode) == 0o600
    assert app.state.services.admin_tokens
    app.state.services.db.close()

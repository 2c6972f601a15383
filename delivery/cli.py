"""``delivery`` command line: serve, manage tiers, mint development tokens.

::

    delivery serve [--host H] [--port P] [--workers N]
    delivery users set-tier alice premium
    delivery users get alice
    delivery users app-password create alice --name phone   # for Subsonic apps
    delivery token --user alice [--tier premium] [--ttl 1h]
    delivery events failed [--status dead|retrying]   # failed event deliveries
    delivery events retry [--consumer NAME]           # requeue the dead ones
    delivery recommend build [--neighbours K] [--size N] [--quiet]  # recommendations
    delivery config                       # effective settings, secrets masked

Settings come from ``DELIVERY_*`` variables (:mod:`delivery.settings`), read once
in :func:`main` and handed to the command (the modules' commands included). Errors
are one line on stderr (one per bad setting) and a non-zero exit: 2 for bad input
or configuration.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import re
import sys
from collections.abc import Sequence

from common.logs import configure_logging
from delivery.modules.cli import (
    add_catalog_commands,
    add_events_commands,
    add_recommend_commands,
)
from delivery.settings import (
    DeliverySettings,
    SettingsError,
    load_settings,
    require_user_token_keys,
)
from delivery.subsonic.cli import AppPasswordCliError, add_app_password_commands

_DURATION_RE = re.compile(r"(\d+)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_TOKEN_TTL_S = 30 * 86400


class CliError(Exception):
    """A one-line message for the user; exit status 2."""


def parse_duration(text: str) -> int:
    """``90`` / ``90s`` / ``15m`` / ``1h`` / ``2d`` -> seconds."""
    m = _DURATION_RE.fullmatch(text.strip().lower())
    if not m or int(m[1]) <= 0:
        raise CliError(f"invalid duration {text!r}: use e.g. 900, 15m, 1h or 2d")
    return int(m[1]) * _UNITS[m[2]]


def is_loopback(host: str) -> bool:
    """``127.0.0.1``, ``::1``, ``localhost``: addresses only this machine can reach."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # another host name, or an unspecified address such as 0.0.0.0


# -- commands -----------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace, settings: DeliverySettings) -> int:
    import uvicorn

    from common.metrics import multiprocess_metrics
    from common.serving import ConnectionLimits, uvicorn_options
    from delivery import credentials
    from delivery.app import create_app

    require_user_token_keys(settings)  # before any worker starts (each checks it again)
    host, port, workers = settings.host, settings.port, settings.workers  # options included
    if settings.dev_mode and not settings.dev_mode_allow_remote and not is_loopback(host):
        raise CliError(
            f"DELIVERY_DEV_MODE is on and DELIVERY_HOST / --host {host!r} is not a loopback "
            "address: dev mode lets anyone mint user tokens (POST /v1/dev/token); listen on "
            "127.0.0.1, set DELIVERY_DEV_MODE=false, or set DELIVERY_DEV_MODE_ALLOW_REMOTE=true"
        )
    if settings.dev_mode and not is_loopback(host):
        logging.getLogger("delivery").warning(
            "DELIVERY_DEV_MODE_ALLOW_REMOTE: dev mode on %s: anyone who reaches it can mint "
            "demo-user tokens",
            host,
        )
    common = {
        "host": host,
        "port": port,
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "log_level": settings.log_level,
        # The app writes its own JSON access lines with request ids (delivery.metrics);
        # uvicorn's plain-text ones would duplicate them.
        "access_log": False,
        "log_config": None,
        # Header size and time, idle and connection bounds (common.serving); bodies are
        # bounded by the app's outermost middleware (DELIVERY_MAX_BODY_BYTES).
        **uvicorn_options(ConnectionLimits.from_settings("delivery", settings)),
    }
    if workers == 1:
        # Build the app here so a bad setting fails before the socket is bound.
        with multiprocess_metrics("delivery", 1):  # an operator's PROMETHEUS_MULTIPROC_DIR
            uvicorn.run(create_app(settings), workers=1, **common)
        return 0
    # Several workers: generate dev secrets and migrate once, in the parent, so workers
    # never race on first run; each worker then builds its own app from the environment.
    if not settings.access_log:
        # The CLI's one environment write: the workers read their settings from the
        # environment they inherit (delivery.app.create_worker_app), and --no-access-log
        # must reach them.
        os.environ["DELIVERY_ACCESS_LOG"] = "false"
    credentials.user_jwt_secrets(settings, create=settings.dev_mode)
    credentials.admin_tokens(settings, create=settings.dev_mode)
    if settings.signer == "edge":
        credentials.stream_signing_key(settings)
    from delivery.app import open_migrated_database

    open_migrated_database(settings).close()
    # One scrape of /metrics reports every worker (common.metrics).
    with multiprocess_metrics("delivery", workers):
        uvicorn.run("delivery.app:create_worker_app", factory=True, workers=workers, **common)
    return 0


def _tier_store(settings: DeliverySettings):
    from delivery.app import open_migrated_database
    from delivery.outbox import OutboxEventBus
    from delivery.tiers import TierStore

    db = open_migrated_database(settings)
    store = TierStore(db, settings.entitlements, settings.default_tier, cache_ttl_s=0)
    # Publish-only: the tier.changed event commits with the change, and every running
    # worker forgets the user's cached tier when it reads the outbox.
    store.events = OutboxEventBus(db)
    return db, store


def cmd_users(args: argparse.Namespace, settings: DeliverySettings) -> int:
    from delivery.tiers import InvalidUserId, UnknownTier

    db, store = _tier_store(settings)
    try:
        if args.users_command == "set-tier":
            record = store.set(args.user, args.tier)
        else:
            record = store.get(args.user)
    except (InvalidUserId, UnknownTier) as exc:
        raise CliError(str(exc)) from None
    finally:
        db.close()
    print(
        json.dumps(
            {"user_id": record.user_id, "tier": record.tier, "updated_at": record.updated_at}
        )
    )
    return 0


def cmd_token(args: argparse.Namespace, settings: DeliverySettings) -> int:
    from delivery import credentials
    from delivery.auth import mint_user_token
    from delivery.tiers import InvalidUserId

    ttl = parse_duration(args.ttl)
    if ttl > MAX_TOKEN_TTL_S:
        raise CliError(f"--ttl {args.ttl} is longer than {MAX_TOKEN_TTL_S // 86400} days")
    secrets = credentials.user_jwt_secrets(settings, create=settings.dev_mode)
    if not secrets or "HS256" not in settings.jwt_algorithms:
        raise CliError(
            "no local token secret is configured (DELIVERY_JWT_HS256_SECRETS or "
            "DELIVERY_JWT_HS256_SECRET_FILE, or DELIVERY_DEV_MODE=true): tokens must come "
            "from your identity provider"
        )
    extra = {}
    if args.tier is not None:
        if args.tier not in settings.entitlements:
            raise CliError(
                f"unknown tier {args.tier!r}: choose from {', '.join(settings.entitlements)}"
            )
        if not settings.tier_claim:
            raise CliError(
                "DELIVERY_TIER_CLAIM is empty, so a tier in the token would be ignored; "
                "use `delivery users set-tier` instead"
            )
        extra[settings.tier_claim] = args.tier
    try:
        token = mint_user_token(
            secrets[0],
            args.user,
            ttl_s=ttl,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            extra=extra,
        )
    except InvalidUserId as exc:
        raise CliError(str(exc)) from None
    print(token)
    return 0


def cmd_config(args: argparse.Namespace, settings: DeliverySettings) -> int:
    print(json.dumps(settings.public_dict(), indent=2, default=str))
    return 0


# -- parser -------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="delivery", description="Audio delivery service: signed stream URLs by subscription."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = sub.add_parser("serve", help="run the HTTP service (default 127.0.0.1:8000)")
    serve.add_argument("--host", help="listen address (DELIVERY_HOST)")
    serve.add_argument("--port", help="listen port (DELIVERY_PORT)")
    serve.add_argument("--workers", help="worker processes (DELIVERY_WORKERS)")
    serve.add_argument(
        "--no-access-log",
        dest="access_log",
        action="store_const",
        const=False,
        help="no per-request log lines (DELIVERY_ACCESS_LOG=false)",
    )
    serve.set_defaults(
        handler=cmd_serve,
        options={
            "host": "--host",
            "port": "--port",
            "workers": "--workers",
            "access_log": "--no-access-log",
        },
    )

    users = sub.add_parser("users", help="subscription tiers in the delivery database")
    users_sub = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    set_tier = users_sub.add_parser("set-tier", help="set a user's tier")
    set_tier.add_argument("user")
    set_tier.add_argument("tier")
    get = users_sub.add_parser("get", help="show a user's tier")
    get.add_argument("user")
    users.set_defaults(handler=cmd_users)
    add_app_password_commands(users_sub)  # delivery.subsonic.cli (sets its own handler)

    token = sub.add_parser("token", help="mint a user JWT from the local (dev) secret")
    token.add_argument("--user", required=True, help="the user id (the token's sub)")
    token.add_argument("--tier", help="put this tier in the token's tier claim")
    token.add_argument("--ttl", default="1h", help="lifetime: 900, 15m, 1h, 2d (default 1h)")
    token.set_defaults(handler=cmd_token)

    config = sub.add_parser("config", help="print the effective settings (secrets masked)")
    config.set_defaults(handler=cmd_config)

    # The modules (playlists, search, social) add their own commands, e.g. `catalog sync`;
    # every command sets `handler(args, settings)`.
    add_catalog_commands(sub)
    add_events_commands(sub)
    add_recommend_commands(sub)
    return parser


def _error(exc: Exception) -> int:
    # One line per problem (a SettingsError holds one line per bad setting).
    for line in str(exc).splitlines() or [type(exc).__name__]:
        print(f"delivery: error: {line}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # A command's options override settings (`serve --port`, `catalog sync --store`): each
    # is stored under its field's name, validated with the environment and named (by its
    # option) in the error lines.
    options: dict[str, str] = getattr(args, "options", {})
    overrides = {field: getattr(args, field) for field in options}
    try:
        settings = load_settings(options, **{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        return _error(exc)
    configure_logging("delivery", settings.log_level)
    try:
        return int(args.handler(args, settings) or 0)
    except (CliError, SettingsError, AppPasswordCliError) as exc:
        return _error(exc)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

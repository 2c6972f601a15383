"""``origin``: serve an object store to edges, and look inside it.

    origin serve [--store URL] [--host HOST] [--port PORT]
    origin pull-token
    origin ls [--store URL] [PREFIX]
    origin stat [--store URL] KEY
    origin cat [--store URL] KEY > file
    origin put [--store URL] [--content-type TYPE] KEY FILE

Settings come from ``ORIGIN_*`` variables (origin/settings.py), read once in
:func:`main` with the options on top and handed to the command. Bad input ends
with one line on stderr (a line per bad setting) and a non-zero status: 2 for
usage and configuration errors, 1 when the store says no (missing object,
unreachable backend).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import get_args

from common.logs import configure_logging
from common.setting_values import InvalidSettings
from origin.errors import InvalidKey, ObjectNotFound, StoreConfigError, StoreError, StoreUnavailable
from origin.keys import validate_key, validate_prefix
from origin.settings import LogLevel, OriginSettings, load_settings
from origin.store import ObjectStore, open_store

log = logging.getLogger("origin")


# Options that override a setting: field -> option (a bad value names the option).
OPTIONS = {"store": "--store", "host": "--host", "port": "--port", "log_level": "--log-level"}


def _store(settings: OriginSettings) -> ObjectStore:
    return open_store(settings.store)


def cmd_serve(args, settings: OriginSettings) -> int:
    configure_logging("origin", settings.log_level)
    import uvicorn

    from common.serving import GET_ONLY_MAX_BODY_BYTES, ConnectionLimits, uvicorn_options
    from origin.server import create_app

    store = open_store(settings.store)
    check = getattr(store, "check", None)
    if check is not None:
        try:
            check()  # a missing bucket is a configuration error: refuse to start
        except StoreUnavailable as exc:
            # An outage at start-up is not: serve, and let /readyz report it.
            log.warning("the store is not reachable yet: %s", exc)
    tokens = settings.pull_tokens()
    source = "ORIGIN_PULL_TOKEN" if settings.pull_token else str(settings.pull_token_file)
    log.info(
        "serving %s on http://%s:%d (pull token: %s)", store, settings.host, settings.port, source
    )
    uvicorn.run(
        create_app(store, tokens),
        workers=1,  # one process per origin (and never uvicorn's own WEB_CONCURRENCY read)
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        lifespan="on",
        server_header=False,
        log_config=None,  # keep the JSON handler installed by configure_logging
        access_log=False,  # the app logs each request itself, with its request id
        # Header size and time, idle and connection bounds (common.serving); GET/HEAD only,
        # so bodies are never read.
        **uvicorn_options(
            ConnectionLimits.from_settings("origin", settings, GET_ONLY_MAX_BODY_BYTES)
        ),
    )
    return 0


def cmd_pull_token(args, settings: OriginSettings) -> int:
    print(settings.pull_tokens()[0])
    return 0


def cmd_ls(args, settings: OriginSettings) -> int:
    validate_prefix(args.prefix)
    for key in _store(settings).list(args.prefix):
        print(key)
    return 0


def cmd_stat(args, settings: OriginSettings) -> int:
    validate_key(args.key)
    info = _store(settings).stat(args.key)
    fields = {
        "key": info.key,
        "size": info.size,
        "etag": info.etag,
        "content_type": info.content_type,
        "modified": info.modified.isoformat(),
        "sha256": info.sha256,
    }
    print(json.dumps(fields, indent=2))
    return 0


def cmd_cat(args, settings: OriginSettings) -> int:
    validate_key(args.key)
    out = sys.stdout.buffer
    with _store(settings).open_range(args.key) as reader:
        for chunk in reader:
            out.write(chunk)
    out.flush()
    return 0


def cmd_put(args, settings: OriginSettings) -> int:
    validate_key(args.key)
    info = _store(settings).put_file(args.key, args.file, args.content_type)
    print(f"{info.key} {info.size} bytes sha256={info.sha256}")
    return 0


def _default(field: str) -> object:
    return OriginSettings.model_fields[field].default


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="origin",
        description="Serve an object store (file://, s3://, gs://) to edges over HTTP, "
        "and list, read or write the objects in it.",
        epilog="Settings (README.md, Configuration): "
        + ", ".join(f"ORIGIN_{name.upper()}" for name in OriginSettings.model_fields)
        + ". Options override them.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    store_help = f"store URL (default: $ORIGIN_STORE or {_default('store')})"

    serve = commands.add_parser(
        "serve",
        help="serve the store over HTTP (GET/HEAD, ranges, Bearer pull token)",
        description="Serve GET/HEAD /tracks/... with single-range support, ETags and "
        "conditional requests to clients sending 'Authorization: Bearer <pull token>'. "
        "Also /healthz, /readyz and /metrics.",
    )
    serve.add_argument("--store", metavar="URL", help=store_help)
    serve.add_argument("--host", help=f"address to listen on (default: {_default('host')})")
    serve.add_argument("--port", type=int, help=f"port to listen on (default: {_default('port')})")
    serve.add_argument("--log-level", choices=get_args(LogLevel), default=None)
    serve.set_defaults(func=cmd_serve)

    token = commands.add_parser(
        "pull-token",
        help="print the pull token edges must send (created at first use)",
        description="Print the first accepted pull token: ORIGIN_PULL_TOKEN if set, else the "
        f"token file (ORIGIN_PULL_TOKEN_FILE, default ./{_default('pull_token_file')}), which is "
        "created with a random token (mode 0600) if missing.",
    )
    token.set_defaults(func=cmd_pull_token)

    ls = commands.add_parser("ls", help="list keys under a prefix, sorted")
    ls.add_argument("--store", metavar="URL", help=store_help)
    ls.add_argument(
        "prefix",
        nargs="?",
        default="",
        metavar="PREFIX",
        help="'', 'tracks/', 'tracks/<id>/' or 'tracks/<id>/<version>/' (default: everything)",
    )
    ls.set_defaults(func=cmd_ls)

    stat = commands.add_parser("stat", help="print an object's metadata as JSON")
    stat.add_argument("--store", metavar="URL", help=store_help)
    stat.add_argument("key", metavar="KEY", help="e.g. tracks/<id>/<version>/160.ogg")
    stat.set_defaults(func=cmd_stat)

    cat = commands.add_parser("cat", help="write an object's bytes to stdout")
    cat.add_argument("--store", metavar="URL", help=store_help)
    cat.add_argument("key", metavar="KEY", help="e.g. tracks/<id>/latest.json")
    cat.set_defaults(func=cmd_cat)

    put = commands.add_parser("put", help="upload a file atomically under a key")
    put.add_argument("--store", metavar="URL", help=store_help)
    put.add_argument("--content-type", help="default: from the key (audio/ogg, application/json)")
    put.add_argument("key", metavar="KEY", help="e.g. tracks/<id>/<version>/96.ogg")
    put.add_argument("file", metavar="FILE", help="the file to upload")
    put.set_defaults(func=cmd_put)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        given = {field: getattr(args, field, None) for field in OPTIONS}
        settings = load_settings(OPTIONS, **given)
        return args.func(args, settings)
    except InvalidSettings as exc:
        for line in exc.lines:
            print(f"origin: error: {line}", file=sys.stderr)
        return 2
    except (InvalidKey, StoreConfigError) as exc:
        return _fail(str(exc), 2)
    except (ObjectNotFound, StoreError) as exc:
        return _fail(str(exc), 1)
    except FileNotFoundError as exc:
        return _fail(str(exc), 2)
    except BrokenPipeError:
        # `origin cat KEY | head` closed the pipe: not an error. Point stdout at
        # /dev/null so the interpreter's final flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130


def _fail(message: str, status: int) -> int:
    print(f"origin: error: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())

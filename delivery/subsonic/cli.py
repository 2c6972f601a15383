"""``delivery users app-password create|list|revoke``: passwords for Subsonic apps.

::

    delivery users app-password create alice [--name phone]   # prints password + API key once
    delivery users app-password list alice
    delivery users app-password revoke alice 3f2a9c0e1b7d4a66

``create`` prints one JSON line with the password (for the app's login form, with the
user id as the user name) and the OpenSubsonic API key; neither can be shown again, only
revoked. The sealing key is made at the first ``create``
(``DELIVERY_SUBSONIC_KEY_FILE``). Exit status 2 with one line on a bad user id, name or
password id.
"""

from __future__ import annotations

import argparse
import json

from delivery.settings import DeliverySettings


class AppPasswordCliError(Exception):
    """A one-line message for the user (``delivery.cli`` prints it, exit status 2)."""


def add_app_password_commands(users_sub) -> None:
    app = users_sub.add_parser(
        "app-password", help="passwords for Subsonic apps (`/rest/`), shown once at creation"
    )
    sub = app.add_subparsers(dest="app_password_command", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="make one; prints the password and API key once")
    create.add_argument("user")
    create.add_argument("--name", default="subsonic", help="a label, e.g. the app or device")
    listing = sub.add_parser("list", help="a user's app passwords (ids and names, no secrets)")
    listing.add_argument("user")
    revoke = sub.add_parser("revoke", help="revoke one by its id (takes effect at once)")
    revoke.add_argument("user")
    revoke.add_argument("password_id")
    app.set_defaults(handler=run_app_password)


def run_app_password(args: argparse.Namespace, settings: DeliverySettings) -> int:
    from delivery.app import open_migrated_database
    from delivery.subsonic.app_passwords import AppPasswordError, AppPasswords
    from delivery.tiers import InvalidUserId

    db = open_migrated_database(settings)
    passwords = AppPasswords(db, settings.effective_subsonic_key_file)
    try:
        if args.app_password_command == "create":
            made = passwords.create(args.user, args.name)
            out: object = {
                "password_id": made.password_id,
                "user": made.user_id,
                "name": made.name,
                "password": made.password,
                "api_key": made.api_key,
            }
        elif args.app_password_command == "list":
            out = passwords.list(args.user)
        else:
            passwords.revoke(args.user, args.password_id)
            out = {"revoked": args.password_id, "user": args.user}
    except (AppPasswordError, InvalidUserId) as exc:
        raise AppPasswordCliError(str(exc)) from None
    finally:
        db.close()
    print(json.dumps(out))
    return 0

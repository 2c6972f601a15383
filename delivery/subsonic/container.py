"""What the Subsonic endpoints hold, built once per app (``Services.subsonic``)."""

from __future__ import annotations

from dataclasses import dataclass

from delivery.db import Database
from delivery.ratelimit import Gcra, open_rate_limiter
from delivery.settings import DeliverySettings
from delivery.subsonic.app_passwords import AppPasswords
from delivery.subsonic.catalog import Catalog
from delivery.subsonic.stars import Stars
from delivery.subsonic.throttle import LoginThrottle


@dataclass(frozen=True, slots=True)
class Subsonic:
    app_passwords: AppPasswords
    catalog: Catalog
    stars: Stars
    throttle: LoginThrottle


def build_subsonic(settings: DeliverySettings, db: Database) -> Subsonic:
    return Subsonic(
        app_passwords=AppPasswords(db, settings.effective_subsonic_key_file),
        catalog=Catalog(db),
        stars=Stars(db),
        throttle=LoginThrottle(
            open_rate_limiter(
                settings,
                db,
                Gcra(
                    settings.subsonic_login_failures_per_hour / 3600,
                    settings.subsonic_login_failures_burst,
                ),
            )
        ),
    )

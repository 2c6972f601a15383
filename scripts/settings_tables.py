"""Regenerate (or ``--check``) the settings tables in README.md from the settings models.

Usage: ``python -m scripts.settings_tables`` rewrites the ``<!-- settings: NAME -->``
blocks; ``--check`` exits 1 naming the stale blocks instead. See :mod:`common.settings_doc`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from common.settings_doc import problems, rewrite, settings_table

README = Path(__file__).resolve().parent.parent / "README.md"


def tables() -> dict[str, Callable[[], str]]:
    """Block name -> table. Imports are late: each part's settings module is only loaded here."""

    def origin() -> str:
        from origin.settings import OriginSettings

        return settings_table(OriginSettings, "ORIGIN_")

    def encoder() -> str:
        from encoder.settings import EncoderSettings

        return settings_table(EncoderSettings, "ENCODER_")

    def edge() -> str:
        from edge.settings import EdgeSettings

        return settings_table(EdgeSettings, "EDGE_")

    def delivery() -> str:
        from delivery.settings import DeliverySettings

        return settings_table(DeliverySettings, "DELIVERY_")

    return {"origin": origin, "encoder": encoder, "edge": edge, "delivery": delivery}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 when stale")
    parser.add_argument("--readme", type=Path, default=README, help="default: the repo's README")
    args = parser.parse_args(argv)
    text = args.readme.read_text()
    registry = tables()
    found = problems(text, registry)
    if not found:
        return 0
    unfixable = [line for line in found if not line.endswith(" is stale")]
    if args.check or unfixable:
        for line in found:
            print(f"{args.readme.name}: {line}", file=sys.stderr)
        if not unfixable:
            print("run: python -m scripts.settings_tables", file=sys.stderr)
        return 1
    args.readme.write_text(rewrite(text, registry))
    print(f"{args.readme.name} settings tables rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())

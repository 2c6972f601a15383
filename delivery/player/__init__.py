"""The web player: a static page served by delivery at ``/player``, plus one dev-only route.

See :mod:`delivery.player.routes`. The page itself (``static/``) is plain
HTML, CSS and JavaScript with no build step and no external URL: it talks to
the v1 API of this service and plays the signed URLs it gets back.
"""

from delivery.player.routes import router

__all__ = ["router"]

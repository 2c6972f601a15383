"""Modules of the delivery service: playlists, search, social, plays, library.

Nothing here wires itself: :func:`delivery.app.create_app` builds the services once
(:func:`.container.build_modules`, from the one :class:`delivery.settings.DeliverySettings`),
keeps them in the app's :class:`delivery.services.Services`, subscribes their event
handlers (search indexing on ``track.published`` and ``playlist.changed``, popularity
and friends-listened on ``play.recorded``, hot-playlist pages on ``track.indexed``) and
includes the routers of :mod:`.api_playlists`, :mod:`.api_search`, :mod:`.api_social`,
:mod:`.api_recommend`, :mod:`.api_library` (browsing; its queries are :mod:`.library`,
which other APIs call as ``Modules.library``) and :mod:`.api_admin`. ``delivery catalog
sync`` and ``delivery events`` live in :mod:`.cli` (added by the ``delivery`` command line).
"""

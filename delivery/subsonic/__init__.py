"""The Subsonic / OpenSubsonic API under ``/rest/``, so the apps people already use can play.

One module per concept: :mod:`.routes` (the one endpoint: parameters, authentication,
dispatch, the error mapping), :mod:`.params` (query and form parameters, bounded),
:mod:`.auth` (the credential checks, pure), :mod:`.app_passwords` (per-user app
passwords, sealed with :mod:`.sealing`; the ``delivery users app-password`` command is
:mod:`.cli`), :mod:`.envelope` (the ``subsonic-response`` in XML or JSON),
:mod:`.shapes` (rows to Subsonic elements, ids), :mod:`.catalog` (the library module,
adapted), :mod:`.stars`, and the handlers: :mod:`.browsing`, :mod:`.playlists` and
:mod:`.playback` (stream, download and cover art as redirects to signed edge URLs,
through :mod:`.media`; scrobbles as plays).
"""

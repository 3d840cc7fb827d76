"""The web console (``aura console``): missions, their timelines, replay,
actions, live updates, supervision and plots in a browser, and the same
data as JSON under ``/api/``.

- ``_index``: the mission list, kept current by tailing the log.
- ``_source``: what pages and the API show, and the actions, as plain data.
- ``_auth``: the access token and CSRF gate; ``_charts``: SVG charts.
- ``_app``: the Starlette routes; ``_serve``: uvicorn, foreground or thread.

Needs the ``console`` extra (Starlette, uvicorn, Jinja2).
"""

from ._serve import DEFAULT_PORT, ConsoleServer

__all__ = ["DEFAULT_PORT", "ConsoleServer"]

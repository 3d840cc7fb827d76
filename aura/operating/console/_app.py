"""The console's routes: HTML pages, their live fragments, ``/api/`` and SSE.

Every page is rendered on the server (Jinja2, autoescaped: mission data is
untrusted) from the same ``ConsoleSource`` methods the JSON API returns.
``console.js`` (served from the package, no third-party script) swaps a
page's ``#live`` part when the server-sent ``/events`` stream says the
mission or the list changed, posts actions with the CSRF token, and moves
the replay slider.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import msgspec
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from eventstore import EventStoreError, StoreUnavailableError

from ...core._errors import AuraError
from ...engine._commands import delivered_upto
from ._auth import TokenGate, csrf_token
from ._charts import activity_chart, durations_chart
from ._source import BadRequest, ConsoleSource, NotFound

HERE = Path(__file__).parent
LIVE_POLL = 0.25
"""Seconds between two looks at the log's head by one live stream."""
PAGE_SIZE = 50
STATUSES = (
    "pending",
    "running",
    "waiting",
    "compensating",
    "completed",
    "failed",
    "cancelled",
    "dead",
    "damaged",
)


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return msgspec.json.encode(content)


def create_app(source: ConsoleSource, token: str) -> Any:
    """The console as an ASGI app (behind its token gate)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = _when
    env.filters["json"] = _json_text
    env.filters["q"] = lambda text: quote(str(text), safe="")
    env.filters["seconds"] = lambda s: f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"
    templates = Jinja2Templates(env=env)
    csrf = csrf_token(token)

    def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        context.setdefault("title", "aura")
        return templates.TemplateResponse(
            request,
            name,
            {
                "csrf": csrf,
                "read_only": source.read_only,
                "where": source.where,
                "statuses": STATUSES,
                **context,
            },
            status_code=status,
        )

    async def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await run_in_threadpool(fn, *args, **kwargs)

    def failure(request: Request, err: Exception) -> Response:
        status, message = _status_of(err)
        if request.url.path.startswith("/api/"):
            return JSON({"error": message, "status": status}, status_code=status)
        return page(request, "error.html", status, title=f"{status}", message=message, code=status)

    def guarded(handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                response: Response = await handler(request)
                return response
            except (AuraError, EventStoreError, PermissionError) as err:
                return failure(request, err)

        return endpoint

    def list_query(request: Request) -> dict[str, Any]:
        q = request.query_params
        number = q.get("page", "1")
        if not number.isdigit() or int(number) < 1:
            raise BadRequest(f"page must be a number >= 1, got {number!r}")
        return {
            "status": q.get("status", ""),
            "name": q.get("name", ""),
            "search": q.get("q", "").strip(),
            "tag": q.get("tag", "").strip(),
            "offset": (int(number) - 1) * PAGE_SIZE,
            "limit": PAGE_SIZE,
        }

    async def missions_page(request: Request) -> Response:
        query = list_query(request)
        data = await call(source.missions, **query)
        name = "missions_live.html" if request.query_params.get("partial") else "missions.html"
        pages = max(1, -(-data["total"] // PAGE_SIZE))
        return page(
            request,
            name,
            title="missions",
            data=data,
            query=query,
            page_number=query["offset"] // PAGE_SIZE + 1,
            pages=pages,
        )

    async def mission_page(request: Request) -> Response:
        mission_id = request.path_params["mission_id"]
        data = await call(source.mission, mission_id)
        partial = request.query_params.get("partial")
        return page(
            request,
            "mission_live.html" if partial else "mission.html",
            title=mission_id,
            data=data,
            m=data["mission"],
        )

    async def replay_fragment(request: Request) -> Response:
        data = await call(
            source.replay, request.path_params["mission_id"], request.query_params.get("to", "")
        )
        return page(request, "replay_state.html", state=data)

    async def act_form(request: Request) -> Response:
        """An action from a page without script: a form post, then back to the page."""
        form = await request.form()
        body = {k: v for k, v in form.items() if k != "csrf" and isinstance(v, str)}
        mission_id = request.path_params["mission_id"]
        done = await call(source.act, mission_id, request.path_params["action"], body)
        return RedirectResponse(
            f"/missions/{quote(mission_id, safe='')}?queued={done['command']}", status_code=303
        )

    async def supervision_page(request: Request) -> Response:
        data = await call(source.supervision)
        return page(request, "supervision.html", title="supervision", data=data)

    async def plots_page(request: Request) -> Response:
        minutes = _minutes(request)
        data = await call(source.plots, minutes)
        return page(
            request,
            "plots.html",
            title="plots",
            minutes=minutes,
            activity=activity_chart(data["per_minute"]),
            durations=durations_chart(data["durations"]),
        )

    async def chart(request: Request) -> Response:
        data = await call(source.plots, _minutes(request))
        which = request.path_params["which"]
        if which == "activity":
            svg = activity_chart(data["per_minute"])
        elif which == "durations":
            svg = durations_chart(data["durations"])
        else:
            raise NotFound(f"no chart {which!r} (activity, durations)")
        return Response(svg, media_type="image/svg+xml")

    async def live(request: Request) -> Response:
        mission_id = request.query_params.get("mission") or None

        async def stream() -> Any:
            generation = source.index.generation
            delivered = await call(delivered_upto, source.store)
            yield f"retry: 1000\nevent: hello\ndata: {delivered}\n\n"
            while True:
                await asyncio.sleep(LIVE_POLL)
                await call(source.refresh)
                if source.index.changed_since(generation, mission_id):
                    generation = source.index.generation
                    yield f"event: change\ndata: {source.index.position}\n\n"
                now = await call(delivered_upto, source.store)
                if now != delivered:
                    delivered = now
                    yield f"event: delivered\ndata: {now}\n\n"

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    # -- /api/ --------------------------------------------------------------

    async def api_missions(request: Request) -> Response:
        q = request.query_params
        try:
            offset, limit = int(q.get("offset", "0")), int(q.get("limit", str(PAGE_SIZE)))
        except ValueError as err:
            raise BadRequest(f"offset and limit must be integers: {err}") from err
        data = await call(
            source.missions,
            status=q.get("status", ""),
            name=q.get("name", ""),
            search=q.get("q", ""),
            tag=q.get("tag", ""),
            offset=offset,
            limit=limit,
        )
        return JSON(data)

    async def api_mission(request: Request) -> Response:
        return JSON(await call(source.mission, request.path_params["mission_id"]))

    async def api_replay(request: Request) -> Response:
        to = request.query_params.get("to", "")
        return JSON(await call(source.replay, request.path_params["mission_id"], to))

    async def api_act(request: Request) -> Response:
        try:
            body = msgspec.json.decode(await request.body()) if await request.body() else {}
        except msgspec.DecodeError as err:
            raise BadRequest(f"the request body is not valid JSON: {err}") from err
        done = await call(
            source.act, request.path_params["mission_id"], request.path_params["action"], body
        )
        return JSON(done, status_code=202)

    async def api_command(request: Request) -> Response:
        return JSON(await call(source.command_status, request.path_params["number"]))

    async def api_supervision(request: Request) -> Response:
        return JSON(await call(source.supervision))

    async def api_plots(request: Request) -> Response:
        return JSON(await call(source.plots, _minutes(request)))

    async def api_verify(request: Request) -> Response:
        return JSON(await call(source.verify_now))

    async def api_csrf(request: Request) -> Response:
        return JSON({"csrf": csrf, "read_only": source.read_only})

    async def not_found(request: Request, exc: Exception) -> Response:
        return failure(request, NotFound(f"no page {request.url.path!r}"))

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return failure(
            request, BadRequest(f"{request.method} is not allowed on {request.url.path}")
        )

    g = guarded
    routes = [
        Route("/", g(missions_page)),
        Route("/missions/{mission_id:path}", g(mission_page)),
        Route("/replay/{mission_id:path}", g(replay_fragment)),
        Route("/act/{action}/{mission_id:path}", g(act_form), methods=["POST"]),
        Route("/supervision", g(supervision_page)),
        Route("/plots", g(plots_page)),
        Route("/charts/{which}.svg", g(chart)),
        Route("/events", g(live)),
        Route("/api/missions", g(api_missions)),
        Route("/api/missions/{mission_id:path}", g(api_mission)),
        Route("/api/replay/{mission_id:path}", g(api_replay)),
        Route("/api/act/{action}/{mission_id:path}", g(api_act), methods=["POST"]),
        Route("/api/commands/{number}", g(api_command)),
        Route("/api/supervision", g(api_supervision)),
        Route("/api/plots", g(api_plots)),
        Route("/api/audit/verify", g(api_verify)),
        Route("/api/csrf", g(api_csrf)),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(TokenGate, token=token)],
        exception_handlers={404: not_found, 405: not_allowed},
    )
    return app


def _status_of(err: Exception) -> tuple[int, str]:
    if isinstance(err, NotFound):
        return 404, str(err)
    if isinstance(err, PermissionError):
        return 403, str(err)
    if isinstance(err, StoreUnavailableError):
        return 503, str(err)
    if isinstance(err, EventStoreError):
        return 500, f"the event log cannot be read: {err}"
    return 400, str(err)


def _minutes(request: Request) -> int:
    text = request.query_params.get("minutes", "60")
    if not text.isdigit() or not 1 <= int(text) <= 1440:
        raise BadRequest(f"minutes must be 1..1440, got {text!r}")
    return int(text)


def _when(ts: float | None) -> str:
    if not ts:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def _json_text(value: Any) -> str:
    try:
        return msgspec.json.encode(value).decode()
    except (TypeError, msgspec.EncodeError):
        return repr(value)

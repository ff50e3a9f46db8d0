"""The portal web app (Starlette + Jinja2, zh-CN): public board and feeds, member area, HQ console.

    /                     public notice board (public tier only)      /feed.atom, /cap/<event id>.xml
    /members              member tier, by type and township           login: member or hq role
    /hq                   live fire view and review queue (SSE)        login: hq role
    /hq/audit             audit trail with search                      login: hq role

The HQ console and the member area carry the system banner (:mod:`consumers.portal.alerts`): what is down, pushed
live over the console's SSE stream (``status`` events) and, for member pages, ``/members/status/stream``.

Every POST form carries the session's CSRF token; sessions are signed cookies (:mod:`consumers.portal.auth`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from consumers.portal import describe
from consumers.portal.api import Api
from consumers.portal.auth import Account, Accounts, Role, Session, SessionCodec, load_accounts, safe_next
from consumers.portal.board import Board
from consumers.portal.feeds import atom_feed, cap_alert
from consumers.portal.follow import follow
from consumers.portal.request_metrics import RequestMetrics
from consumers.portal.state import ConsoleUpdate, PortalState, SystemStatus
from consumers.portal.watch import watch
from firebus.catalogue import CATALOGUE, CountyWords
from firebus.codec import Codec
from firebus.county import County
from firebus.errors import FirebusError
from firebus.events import Audience, Event, EventType
from firebus.kafka import read_to_end
from firebus.records import AuditAction, AuditEvent, ReviewDecision, ReviewItem, ReviewStatus, Verdict
from firebus.settings import Settings
from firebus.topics import AUDIT

log = structlog.get_logger(__name__)

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "firebus_session"
AUDIT_SHOWN = 200
KEEPALIVE_S = 15.0
BANNER_PATHS = ("/hq", "/members")
"""Pages that carry the system banner: the HQ office's and the member units' (not the public's)."""

Handler = Callable[[Request], Awaitable[Response]]


class DecisionDesk(Protocol):
    """What the HQ console needs to review: the queue, and checked decisions published where the processors read
    them. The composition root injects the client library's review desk."""

    async def items(self) -> dict[UUID, ReviewItem]: ...

    async def item(self, event_id: UUID) -> ReviewItem:
        """The item, or :class:`~firebus.errors.InvalidEventError` when it is not in the queue."""

    def decision(
        self,
        item: ReviewItem,
        *,
        reviewer: str,
        verdict: Verdict,
        reason: str | None = None,
        redactions: Sequence[str] = (),
    ) -> ReviewDecision:
        """A checked decision; refusals are :class:`~firebus.errors.InvalidEventError` naming every problem."""

    async def publish(self, item: ReviewItem, decision: ReviewDecision) -> None: ...


class Portal:
    """The app's collaborators: settings, county, accounts, the state the follower fills, the review desk."""

    def __init__(
        self,
        *,
        settings: Settings,
        county: County,
        desk: DecisionDesk,
        accounts: Accounts | None = None,
        codec: Codec | None = None,
    ) -> None:
        self.settings = settings
        self.county = county
        self.accounts = accounts if accounts is not None else load_accounts(settings.portal_accounts)
        secret = settings.portal_secret.get_secret_value() if settings.portal_secret else secrets.token_urlsafe(32)
        self.sessions = SessionCodec(secret)
        self.codec = codec or Codec()
        self.state = PortalState(codec=self.codec)
        self.desk = desk
        self.words = CountyWords.of(county)
        self.reviewer_names = {reviewer.id: reviewer.name for reviewer in county.reviewers}
        self.closing = asyncio.Event()
        """Why the follower that keeps the state current stopped, if it did (the portal is then never ready)."""
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.globals.update(
            local=lambda moment: describe.local(moment, self.words.zone),
            title=lambda event: describe.title(event, self.words),
            facts=lambda event: describe.facts(event, self.words),
            township_names=self.words.township_list,
            type_names={event_type: kind.name for event_type, kind in CATALOGUE.items()},
            kind_names=describe.KIND_NAMES,
            severity_names=describe.SEVERITY_NAMES,
            urgency_names=describe.URGENCY_NAMES,
            unit_names=self.words.units,
            reviewer_names=self.reviewer_names,
            county_name=county.county.name,
        )

    # --- sessions and access ---------------------------------------------------------------------------------

    def session_of(self, request: Request) -> Session:
        found: Session | None = request.scope.get("firebus.session")
        if found is None:
            found = self.sessions.loads(request.cookies.get(SESSION_COOKIE))
            if found is None:
                found = Session.anonymous()
                request.scope["firebus.session_new"] = True
            request.scope["firebus.session"] = found
        return found

    def account_of(self, request: Request) -> Account | None:
        session = self.session_of(request)
        return self.accounts.get(session.account_id) if session.account_id else None

    def set_session(self, response: Response, session: Session) -> Response:
        response.set_cookie(
            SESSION_COOKIE,
            self.sessions.dumps(session),
            max_age=self.sessions.max_age_s,
            httponly=True,
            samesite="lax",
            path="/",
        )
        return response

    def render(self, request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        session = self.session_of(request)
        path = request.url.path
        context |= {"account": self.account_of(request), "csrf": session.csrf, "path": path}
        context.setdefault("alerts", self.state.alerts if path.startswith(BANNER_PATHS) else None)
        response = self.templates.TemplateResponse(request, name, context, status_code=status_code)
        if request.scope.get("firebus.session_new"):
            self.set_session(response, session)
        return response

    def gate(self, request: Request, role: Role) -> Account | Response:
        """The logged-in account allowed here, else the login redirect (no login) or a 403 page (wrong role)."""
        account = self.account_of(request)
        if account is None:
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        if role is Role.HQ and account.role is not Role.HQ:
            return self.render(request, "forbidden.html", status_code=403)
        return account

    async def form(self, request: Request) -> dict[str, Any] | None:
        """The submitted form, or None when its CSRF token is not the session's."""
        form = await request.form()
        token = form.get("csrf")
        if not self.session_of(request).csrf_ok(token if isinstance(token, str) else None):
            log.warning("portal_csrf_refused", path=request.url.path)
            return None
        return {key: form.getlist(key) if key == "redact" else form.get(key) for key in form}

    # --- public ----------------------------------------------------------------------------------------------

    async def board(self, request: Request) -> Response:
        threads = self.state.boards[Audience.PUBLIC].threads()
        return self.render(request, "board.html", threads=threads, ready=self.state.ready.is_set())

    async def notice_page(self, request: Request) -> Response:
        tier = Audience.PUBLIC
        if request.url.path.startswith("/members"):
            gated = self.gate(request, Role.MEMBER)
            if not isinstance(gated, Account):
                return gated
            tier = Audience.MEMBERS
        thread = self.state.boards[tier].thread(_uuid(request.path_params["thread_id"]))
        if thread is None:
            return self.render(request, "not_found.html", status_code=404)
        return self.render(request, "notice.html", thread=thread, tier=tier)

    async def feed(self, request: Request) -> Response:
        base = _base(request)
        body = atom_feed(
            self.state.boards[Audience.PUBLIC].threads(),
            feed_id=f"urn:firebus:{self.county.county.id}:public",
            feed_title=f"{self.county.county.name}森林草原防灭火公开信息",
            base_url=base,
            words=self.words,
            updated=datetime.now(UTC),
        )
        return Response(body, media_type="application/atom+xml; charset=utf-8")

    async def cap(self, request: Request) -> Response:
        public = self.state.boards[Audience.PUBLIC]
        notice = public.notice(_uuid(request.path_params["event_id"]))
        if notice is None:
            return Response("no such public alert", status_code=404, media_type="text/plain; charset=utf-8")
        body = cap_alert(
            notice,
            sender=f"firebus@{self.county.county.id}",
            sender_name=self.words.unit(notice.release.publisher_unit),
            words=self.words,
            county_name=self.county.county.name,
            lookup=public.notice,
            web=f"{_base(request)}/notices/{notice.release.thread_id}",
        )
        return Response(body, media_type="application/cap+xml; charset=utf-8")

    # --- health (anonymous: up/down and ready or not, nothing about what the portal holds) --------------------------

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "up"})

    async def readyz(self, request: Request) -> Response:
        """Ready once the follower has caught up with the ends the followed topics had when it started."""
        if self.state.follower_problem is not None:
            reason = f"stopped following its topics: {self.state.follower_problem}"
        elif not self.state.ready.is_set():
            reason = "catching up with the tier, HQ live and review topics"
        else:
            return JSONResponse({"ready": True})
        return JSONResponse({"ready": False, "reason": " ".join(reason.split())[:200]}, 503)

    async def metrics(self, request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    def note_follower_stopped(self, task: asyncio.Task[None]) -> None:
        """The follower ended before the portal did: the pages stop changing, so /readyz and the banner say why."""
        if not self.closing.is_set():
            error = None if task.cancelled() else task.exception()
            self.state.follower_problem = f"{type(error).__name__}: {error}" if error else "it returned"
            log.error("portal_follower_stopped", reason=self.state.follower_problem)

    # --- login -----------------------------------------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        return self.render(request, "login.html", next=safe_next(request.query_params.get("next")), error=None)

    async def login(self, request: Request) -> Response:
        form = await self.form(request)
        if form is None:
            return self.render(request, "login.html", status_code=403, next="/", error="页面已过期，请重新登录。")
        target = safe_next(str(form.get("next") or ""))
        account = self.accounts.authenticate(str(form.get("username") or ""), str(form.get("password") or ""))
        if account is None:
            log.info("portal_login_failed", username=str(form.get("username") or ""))
            return self.render(request, "login.html", status_code=401, next=target, error="账号或密码错误。")
        log.info("portal_login", account=account.id, role=account.role.value)
        if target == "/":
            target = "/hq" if account.role is Role.HQ else "/members"
        response = RedirectResponse(target, status_code=303)
        return self.set_session(response, self.session_of(request).login(account.id))

    async def logout(self, request: Request) -> Response:
        if await self.form(request) is None:
            return self.render(request, "forbidden.html", status_code=403)
        return self.set_session(RedirectResponse("/", status_code=303), Session.anonymous())

    # --- members ---------------------------------------------------------------------------------------------

    async def members(self, request: Request) -> Response:
        gated = self.gate(request, Role.MEMBER)
        if not isinstance(gated, Account):
            return gated
        chosen_type = _event_type(request.query_params.get("type"))
        township = request.query_params.get("township") or None
        board: Board = self.state.boards[Audience.MEMBERS]
        return self.render(
            request,
            "members.html",
            threads=board.threads(event_type=chosen_type, township=township),
            chosen_type=chosen_type.value if chosen_type else "",
            chosen_township=township or "",
            townships=self.words.townships,
        )

    # --- HQ console ------------------------------------------------------------------------------------------

    async def hq(self, request: Request) -> Response:
        gated = self.gate(request, Role.HQ)
        if not isinstance(gated, Account):
            return gated
        items = sorted(
            (item for item in (await self.desk.items()).values() if item.status is ReviewStatus.PENDING),
            key=lambda item: item.received_at,
        )
        queue = [(item, self._decoded(item), self._redactable(item)) for item in items]
        return self.render(
            request,
            "hq.html",
            live=list(self.state.live),
            queue=queue,
            done=request.query_params.get("done"),
            done_event=request.query_params.get("event"),
            error=request.query_params.get("error"),
        )

    def _decoded(self, item: ReviewItem) -> Event[Any] | None:
        with contextlib.suppress(FirebusError):
            record = self.codec.decode(item.event)
            if isinstance(record, Event):
                return record
        return None

    def _redactable(self, item: ReviewItem) -> list[str]:
        return sorted(self.codec.contracts.for_event_type(item.event_type).redactable_paths)

    async def review(self, request: Request) -> Response:
        gated = self.gate(request, Role.HQ)
        if not isinstance(gated, Account):
            return gated
        form = await self.form(request)
        if form is None:
            return self.render(request, "forbidden.html", status_code=403)
        event_id = _uuid(request.path_params["event_id"])
        action = str(form.get("action") or "")
        reason = str(form.get("reason") or "").strip() or None
        redactions = [str(path) for path in form.get("redact") or []]
        if action not in ("approve", "reject", "redact"):
            return _refused(event_id, gated.id, f"未知操作：{action}")
        if action == "redact" and not redactions:
            return _refused(event_id, gated.id, "删改发布需要至少选择一个字段。")
        try:
            item = await self.desk.item(event_id)
            decision = self.desk.decision(
                item,
                reviewer=gated.id,
                verdict=Verdict.REJECT if action == "reject" else Verdict.APPROVE,
                reason=reason,
                redactions=redactions if action == "redact" else (),
            )
            await self.desk.publish(item, decision)
        except FirebusError as exc:
            return _refused(event_id, gated.id, str(exc))
        log.info("review_decided", event_id=str(event_id), decision=action, reviewer=gated.id, via="portal")
        return RedirectResponse(f"/hq?done={action}&event={event_id}", status_code=303)

    async def audit(self, request: Request) -> Response:
        gated = self.gate(request, Role.HQ)
        if not isinstance(gated, Account):
            return gated
        text = (request.query_params.get("q") or "").strip()
        action = request.query_params.get("action") or ""
        records = []
        for _key, value in await read_to_end(self.settings, AUDIT):
            with contextlib.suppress(FirebusError):
                record = self.codec.decode(value or b"")
                if isinstance(record, AuditEvent) and audit_matches(record, text=text, action=action):
                    records.append(record)
        records.sort(key=lambda record: record.at, reverse=True)
        return self.render(
            request,
            "audit.html",
            records=records[:AUDIT_SHOWN],
            total=len(records),
            q=text,
            chosen_action=action,
            actions=[choice.value for choice in AuditAction],
        )

    def _banner_message(self, status: SystemStatus) -> str:
        html = self.templates.env.get_template("_banner.html").render(alerts=status.alerts)
        data = {"alerts": len(status.alerts), "html": html}
        return f"event: status\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"

    async def live_stream(self, request: Request) -> Response:
        gated = self.gate(request, Role.HQ)
        if not isinstance(gated, Account):
            return Response("login required", status_code=401)
        live_template = self.templates.env.get_template("_live_item.html")
        item_template = self.templates.env.get_template("_review_item.html")
        csrf = self.session_of(request).csrf

        def message(update: ConsoleUpdate) -> str:
            if isinstance(update, SystemStatus):
                return self._banner_message(update)
            if isinstance(update, ReviewItem):
                # An item to add to the queue (with its review form), or one decided or withdrawn elsewhere.
                pending = update.status is ReviewStatus.PENDING
                html = (
                    item_template.render(
                        item=update, event=self._decoded(update), redactable=self._redactable(update), csrf=csrf
                    )
                    if pending
                    else ""
                )
                data = {"id": str(update.event_id), "pending": pending, "html": html}
                return f"event: review\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
            data = {"id": str(update.header.event_id), "html": live_template.render(event=update)}
            return f"event: fire\nid: {update.header.event_id}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"

        return self._stream(request, message)

    async def status_stream(self, request: Request) -> Response:
        """The system banner alone, for member pages (the HQ console has it on its live stream)."""
        gated = self.gate(request, Role.MEMBER)
        if not isinstance(gated, Account):
            return Response("login required", status_code=401)

        def message(update: ConsoleUpdate) -> str | None:
            return self._banner_message(update) if isinstance(update, SystemStatus) else None

        return self._stream(request, message)

    def _stream(self, request: Request, message: Callable[[ConsoleUpdate], str | None]) -> Response:
        """Server-sent events: the banner as it is now, then each update ``message`` renders (None: not for this
        stream), with keep-alives, until the client goes or the portal stops."""

        async def events() -> AsyncIterator[str]:
            queue = self.state.listen()
            try:
                yield "retry: 2000\n\n"
                yield self._banner_message(SystemStatus(self.state.alerts))  # what changed since the page was made
                while not self.closing.is_set():
                    try:
                        update = await asyncio.wait_for(queue.get(), timeout=KEEPALIVE_S)
                    except TimeoutError:
                        if await request.is_disconnected():
                            return
                        yield ": keepalive\n\n"
                        continue
                    rendered = message(update)
                    if rendered is not None:
                        yield rendered
            finally:
                self.state.unlisten(queue)

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )


def _refused(event_id: UUID, reviewer: str, error: str) -> Response:
    """Back to the console with what the reviewer must correct."""
    log.info("portal_review_refused", event_id=str(event_id), reviewer=reviewer, error=error)
    return RedirectResponse(f"/hq?error={_quote(error)}", status_code=303)


def audit_matches(record: AuditEvent, *, text: str, action: str) -> bool:
    """True when the audit record has ``action`` (if given) and ``text`` in its event id, unit, actor or reason."""
    if action and record.action.value != action:
        return False
    if not text:
        return True
    haystack = " ".join(
        str(part)
        for part in (
            record.event_id,
            record.event_type,
            record.publisher_unit,
            record.actor,
            record.reason,
            record.tier,
            *record.details.values(),
        )
        if part is not None
    )
    return text.lower() in haystack.lower()


def _uuid(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        return UUID(int=0)


def _event_type(text: str | None) -> EventType | None:
    try:
        return EventType(text) if text else None
    except ValueError:
        return None


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _quote(text: str) -> str:
    from urllib.parse import quote  # noqa: PLC0415

    return quote(text[:300])


def create_app(portal: Portal, *, follow_topics: bool = True, api: Api | None = None) -> Starlette:
    """The ASGI app; with ``follow_topics`` its lifespan runs the follower that keeps the state current; ``api``
    (the HTTP API for department systems) is served at ``/api/v1``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(follow(portal.settings, portal.state, stop)) if follow_topics else None
        if task is not None:
            task.add_done_callback(portal.note_follower_stopped)
        watcher = asyncio.create_task(watch(portal.settings, portal.state, stop, zone=portal.words.zone))
        try:
            yield
        finally:
            portal.closing.set()
            stop.set()
            for running in (task, watcher):
                if running is not None:
                    running.cancel()
                    with contextlib.suppress(asyncio.CancelledError, FirebusError):
                        await running
            if api is not None:
                await api.close()

    routes = [
        Route("/", portal.board),
        Route("/notices/{thread_id}", portal.notice_page),
        Route("/feed.atom", portal.feed),
        Route("/cap/{event_id}.xml", portal.cap),
        Route("/healthz", portal.healthz),
        Route("/readyz", portal.readyz),
        Route("/metrics", portal.metrics),
        Route("/login", portal.login_page, methods=["GET"]),
        Route("/login", portal.login, methods=["POST"]),
        Route("/logout", portal.logout, methods=["POST"]),
        Route("/members", portal.members),
        Route("/members/notices/{thread_id}", portal.notice_page),
        Route("/members/status/stream", portal.status_stream),
        Route("/hq", portal.hq),
        Route("/hq/live/stream", portal.live_stream),
        Route("/hq/review/{event_id}", portal.review, methods=["POST"]),
        Route("/hq/audit", portal.audit),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    if api is not None:
        routes.append(Mount("/api/v1", app=api.app()))
    return Starlette(routes=routes, middleware=[Middleware(RequestMetrics, routes=routes)], lifespan=lifespan)


async def serve(portal: Portal, *, api: Api | None = None) -> None:
    """Run the portal (and ``api`` at ``/api/v1``) with uvicorn until interrupted."""
    import uvicorn  # noqa: PLC0415

    settings = portal.settings
    config = uvicorn.Config(
        create_app(portal, api=api),
        host=settings.portal_host,
        port=settings.portal_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    log.info("portal_starting", url=f"http://{settings.portal_host}:{settings.portal_port}/")
    await uvicorn.Server(config).serve()

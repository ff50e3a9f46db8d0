"""The portal web app (Starlette + Jinja2, zh-CN): public board and feeds, member area, HQ console.

    /                     public notice board (public tier only)      /feed.atom, /cap/<event id>.xml
    /members              member tier, by type and township           login: any account
    /hq                   live fire view and review queue (SSE)        login: hq_reviewer or hq_admin
    /hq/audit             audit trail with search                      login: hq_reviewer or hq_admin
    /admin                accounts, sessions, security log             login: hq_admin, unit_admin (own unit)

The HQ console and the member area carry the system banner (:mod:`consumers.portal.alerts`): what is down, pushed
live over the console's SSE stream (``status`` events) and, for member pages, ``/members/status/stream``.

Every POST form carries the session's CSRF token; the signed session cookie names a server-side session
(:mod:`consumers.portal.sessions`) that logout and administrators end; every response carries the security headers
and a ``?error=`` shows only the server's own words (:mod:`consumers.portal.security`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode
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
from consumers.portal.accounts import Account, Area, Directory, MemoryDirectory, allowed, token_digest
from consumers.portal.admin import AccountPages
from consumers.portal.api import Api
from consumers.portal.audit_log import AUDIT_SHOWN
from consumers.portal.auth import Session, SessionCodec, load_accounts
from consumers.portal.board import Board
from consumers.portal.feeds import atom_feed, cap_alert
from consumers.portal.follow import follow
from consumers.portal.queue import PAGE_SIZE, QueueFilter, counts, is_overdue, page_number, queue_page, rank
from consumers.portal.request_metrics import RequestMetrics
from consumers.portal.security import DONE, SecurityHeaders, message, refusal_code
from consumers.portal.sessions import SESSION_COOKIE, OpenStreams, SessionLoader
from consumers.portal.state import ConsoleUpdate, PortalState, SystemStatus
from consumers.portal.watch import watch
from consumers.portal.words import AUDIT_ACTION_NAMES, Vocabulary, field_label, load_rule_names, tier_name
from firebus.catalogue import CATALOGUE, CountyWords
from firebus.codec import Codec
from firebus.county import County
from firebus.errors import FirebusError, InvalidEventError
from firebus.events import Audience, Event, EventType, MessageKind
from firebus.records import AuditAction, ReviewDecision, ReviewItem, ReviewStatus, Verdict
from firebus.settings import Settings

log = structlog.get_logger(__name__)

HERE = Path(__file__).resolve().parent
KEEPALIVE_S = 15.0
LIVE_SHOWN = 50
"""Live events the console shows (and keeps: its script drops older ones as new ones arrive)."""
DECODED_KEPT = 2_000
"""Review items whose decoded event the console keeps (most recently shown)."""
BANNER_PATHS = ("/hq", "/members")
"""Pages that carry the system banner: the HQ office's and the member units' (not the public's)."""

Handler = Callable[[Request], Awaitable[Response]]


class DecisionDesk(Protocol):
    """What the HQ console needs to review: checked decisions published where the processors read them (the queue
    itself is the portal's followed state). The composition root injects the client library's review desk."""

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
    """The app's collaborators: settings, county, the account directory, the state the follower fills, the review
    desk. Without a ``directory`` the accounts are the demo file's, in memory (tests and in-process use; the
    ``firebus portal`` command always gives the PostgreSQL one)."""

    def __init__(
        self,
        *,
        settings: Settings,
        county: County,
        desk: DecisionDesk,
        directory: Directory | None = None,
        codec: Codec | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.county = county
        self.directory: Directory = (
            directory if directory is not None else MemoryDirectory(load_accounts(settings.portal_accounts))
        )
        self.clock = clock
        self.streams = OpenStreams()
        self.account_pages = AccountPages(self)
        secret = settings.portal_secret.get_secret_value() if settings.portal_secret else secrets.token_urlsafe(32)
        self.sessions = SessionCodec(secret)
        self.codec = codec or Codec()
        self.state = PortalState(codec=self.codec)
        self.desk = desk
        self.words = CountyWords.of(county)
        self.reviewer_names = {reviewer.id: reviewer.name for reviewer in county.reviewers}
        self.vocabulary = Vocabulary(
            self.words, reviewers=self.reviewer_names, rules=load_rule_names(settings.review_policy)
        )
        vocabulary = self.vocabulary
        self.state.audit_words = lambda record: " ".join(
            (AUDIT_ACTION_NAMES[record.action], vocabulary.actor(record.actor), vocabulary.audit_reason(record))
        )
        self._events: OrderedDict[UUID, Event[Any] | None] = OrderedDict()
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
            words=self.vocabulary,
            tier_name=tier_name,
            field_label=field_label,
            audit_action_names=AUDIT_ACTION_NAMES,
            expired=lambda event: describe.expired(event, datetime.now(UTC)),
            item_rank=lambda item: rank(item, datetime.now(UTC)),
            item_overdue=lambda item: is_overdue(item, datetime.now(UTC)),
        )

    # --- sessions and access ---------------------------------------------------------------------------------

    def session_of(self, request: Request) -> Session:
        """The request's session, as :class:`~consumers.portal.sessions.SessionLoader` found it."""
        found: Session | None = request.scope.get("firebus.session")
        if found is None:  # a path the loader skips
            found = Session.anonymous()
            request.scope["firebus.session"] = found
            request.scope["firebus.session_new"] = True
        return found

    def account_of(self, request: Request) -> Account | None:
        """The account of the request's live server-side session, if any."""
        account: Account | None = request.scope.get("firebus.account")
        return account

    def set_session(self, response: Response, session: Session) -> Response:
        response.set_cookie(
            SESSION_COOKIE,
            self.sessions.dumps(session),
            max_age=self.sessions.max_age_s,
            httponly=True,
            samesite="lax",
            secure=self.settings.portal_cookie_secure,
            path="/",
        )
        return response

    def render(self, request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        session = self.session_of(request)
        path = request.url.path
        account = self.account_of(request)
        context |= {
            "account": account,
            "csrf": session.csrf,
            "path": path,
            "sees_hq": account is not None and allowed(account.role, Area.HQ),
            "sees_admin": account is not None and allowed(account.role, Area.ADMIN),
        }
        context.setdefault("alerts", self.state.alerts if path.startswith(BANNER_PATHS) else None)
        response = self.templates.TemplateResponse(request, name, context, status_code=status_code)
        if request.scope.get("firebus.session_new"):
            self.set_session(response, session)
        return response

    def gate(self, request: Request, area: Area) -> Account | Response:
        """The logged-in account allowed in ``area``, else the login redirect (no login) or a 403 page (its role
        may not)."""
        account = self.account_of(request)
        if account is None:
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        if not allowed(account.role, area):
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
            gated = self.gate(request, Area.MEMBERS)
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

    # --- members ---------------------------------------------------------------------------------------------

    async def members(self, request: Request) -> Response:
        gated = self.gate(request, Area.MEMBERS)
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
        gated = self.gate(request, Area.HQ)
        if not isinstance(gated, Account):
            return gated
        params = request.query_params
        now = datetime.now(UTC)
        chosen = QueueFilter(
            event_type=chosen_type.value if (chosen_type := _event_type(params.get("type"))) else "",
            township=str(params.get("township") or "")[:64],
            unit=str(params.get("unit") or "")[:64],
            overdue=params.get("overdue") == "1",
        )
        pending = self.state.pending.values()
        shown = queue_page(pending, chosen, now, page=page_number(params.get("page")))
        return self.render(
            request,
            "hq.html",
            live=list(itertools.islice(self.state.live, LIVE_SHOWN)),
            queue=[(item, self._decoded(item), self._redactable(item)) for item in shown.items],
            shown=shown,
            counts=counts(pending, now),
            chosen=chosen,
            page_size=PAGE_SIZE,
            live_shown=LIVE_SHOWN,
            townships=self.words.townships,
            done=_known(request.query_params.get("done"), DONE),
            done_event=_uuid_or_none(request.query_params.get("event")),
            error=message(request.query_params.get("error")),
        )

    def _decoded(self, item: ReviewItem) -> Event[Any] | None:
        """The item's event, decoded once while it waits (a queue page shows the same items again and again)."""
        if item.event_id in self._events:
            self._events.move_to_end(item.event_id)
            return self._events[item.event_id]
        found = None
        with contextlib.suppress(FirebusError):
            record = self.codec.decode(item.event)
            if isinstance(record, Event):
                found = record
        self._events[item.event_id] = found
        if len(self._events) > DECODED_KEPT:
            self._events.popitem(last=False)
        return found

    def _redactable(self, item: ReviewItem) -> list[str]:
        return sorted(self.codec.contracts.for_event_type(item.event_type).redactable_paths)

    async def review(self, request: Request) -> Response:
        gated = self.gate(request, Area.HQ)
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
            return _refused(event_id, gated.id, "unknown_action")
        if action == "redact" and not redactions:
            return _refused(event_id, gated.id, "redact_needs_field")
        item = self.state.pending.get(event_id)
        if item is None:
            return _refused(event_id, gated.id, "not_pending")
        try:
            decision = self.desk.decision(
                item,
                reviewer=gated.id,
                verdict=Verdict.REJECT if action == "reject" else Verdict.APPROVE,
                reason=reason,
                redactions=redactions if action == "redact" else (),
            )
            await self.desk.publish(item, decision)
        except InvalidEventError as exc:
            return _refused(event_id, gated.id, refusal_code(exc))
        except FirebusError as exc:
            log.warning("portal_review_failed", event_id=str(event_id), reviewer=gated.id, error=str(exc))
            return _refused(event_id, gated.id, "not_sent")
        log.info("review_decided", event_id=str(event_id), decision=action, reviewer=gated.id, via="portal")
        return RedirectResponse(f"/hq?done={action}&event={event_id}", status_code=303)

    async def audit(self, request: Request) -> Response:
        gated = self.gate(request, Area.HQ)
        if not isinstance(gated, Account):
            return gated
        text = (request.query_params.get("q") or "").strip()
        action = request.query_params.get("action") or ""
        page = page_number(request.query_params.get("page"))
        found = self.state.audit.search(text=text[:200], action=action, skip=(page - 1) * AUDIT_SHOWN)
        return self.render(
            request,
            "audit.html",
            records=found.records,
            total=found.total,
            page=page,
            pages=max(1, -(-found.total // AUDIT_SHOWN)),
            query=lambda page: urlencode([("q", text), ("action", action), ("page", str(page))]),
            kept=len(self.state.audit),
            q=text,
            chosen_action=action,
            actions=list(AuditAction),
        )

    def _banner_message(self, status: SystemStatus) -> str:
        html = self.templates.env.get_template("_banner.html").render(alerts=status.alerts)
        data = {"alerts": len(status.alerts), "html": html}
        return f"event: status\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"

    async def live_stream(self, request: Request) -> Response:
        gated = self.gate(request, Area.HQ)
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
                data = {"id": str(update.event_id), "pending": pending, "html": html, **self._queue_facts(update)}
                return f"event: review\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
            data = {
                "id": str(update.header.event_id),
                "html": live_template.render(event=update),
                "fire": _new_fire(update.event_type, update.header.kind),
                "title": describe.title(update, self.words),
            }
            return f"event: fire\nid: {update.header.event_id}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"

        return self._stream(request, message, gated)

    def _queue_facts(self, item: ReviewItem) -> dict[str, Any]:
        """What the console's script needs to place a pushed item and refresh the header: where it ranks, what the
        filters look at, whether it is a new fire to announce, and the header's counts as they are now."""
        now = datetime.now(UTC)
        found = counts(self.state.pending.values(), now)
        return {
            "rank": rank(item, now),
            "type": item.event_type.value,
            "townships": item.townships,
            "unit": item.publisher_unit,
            "overdue": is_overdue(item, now),
            "escalated": item.escalated,
            "fire": _new_fire(item.event_type, item.kind) and not item.escalated,
            "counts": {
                "total": found.total,
                "overdue": found.overdue,
                "by_type": {event_type.value: n for event_type, n in found.by_type.items()},
            },
        }

    async def status_stream(self, request: Request) -> Response:
        """The system banner alone, for member pages (the HQ console has it on its live stream)."""
        gated = self.gate(request, Area.MEMBERS)
        if not isinstance(gated, Account):
            return Response("login required", status_code=401)

        def message(update: ConsoleUpdate) -> str | None:
            return self._banner_message(update) if isinstance(update, SystemStatus) else None

        return self._stream(request, message, gated)

    def _stream(self, request: Request, message: Callable[[ConsoleUpdate], str | None], account: Account) -> Response:
        """Server-sent events: the banner as it is now, then each update ``message`` renders (None: not for this
        stream), with keep-alives, until the client goes, the portal stops or the session ends (logout or
        revocation here at once; revoked elsewhere, e.g. by ``firebus accounts``, by the next keep-alive)."""
        token = self.session_of(request).token or ""

        async def events() -> AsyncIterator[str]:
            queue = self.state.listen()
            ended = self.streams.open(token, account.id)
            try:
                yield "retry: 2000\n\n"
                yield self._banner_message(SystemStatus(self.state.alerts))  # what changed since the page was made
                while not self.closing.is_set() and not ended.is_set():
                    update = await _next_update(queue, ended)
                    if ended.is_set():
                        break
                    if update is None:
                        if await request.is_disconnected():
                            return
                        if await self.directory.session_account(token, now=self.clock()) is None:
                            break
                        yield ": keepalive\n\n"
                        continue
                    rendered = message(update)
                    if rendered is not None:
                        yield rendered
                log.info("portal_stream_ended_with_session", account=account.id, session=token_digest(token)[:12])
                yield "event: session\ndata: ended\n\n"
            finally:
                self.streams.close(token, ended)
                self.state.unlisten(queue)

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )


async def _next_update(queue: asyncio.Queue[ConsoleUpdate], ended: asyncio.Event) -> ConsoleUpdate | None:
    """The next update, or None at a keep-alive or when the session ended first."""
    getting = asyncio.ensure_future(queue.get())
    ending = asyncio.ensure_future(ended.wait())
    done, pending = await asyncio.wait({getting, ending}, timeout=KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    if getting in done:
        return getting.result()
    return None


def _refused(event_id: UUID, reviewer: str, code: str) -> Response:
    """Back to the console with the code of what the reviewer must correct (the page shows its own text for it)."""
    log.info("portal_review_refused", event_id=str(event_id), reviewer=reviewer, error=code)
    return RedirectResponse(f"/hq?error={code}", status_code=303)


def _known(code: str | None, vocabulary: dict[str, str]) -> str | None:
    return code if code in vocabulary else None


def _uuid_or_none(text: str | None) -> UUID | None:
    try:
        return UUID(text) if text else None
    except ValueError:
        return None


def _new_fire(event_type: EventType, kind: MessageKind) -> bool:
    """A first report of a fire: what the console announces with a badge and a tone."""
    return event_type is EventType.FIRE_REPORT and kind is MessageKind.ALERT


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


def create_app(portal: Portal, *, follow_topics: bool = True, api: Api | None = None) -> Starlette:
    """The ASGI app; with ``follow_topics`` its lifespan runs the follower that keeps the state current; ``api``
    (the HTTP API for department systems) is served at ``/api/v1``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await portal.directory.start()
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
            await portal.directory.close()

    routes = [
        Route("/", portal.board),
        Route("/notices/{thread_id}", portal.notice_page),
        Route("/feed.atom", portal.feed),
        Route("/cap/{event_id}.xml", portal.cap),
        Route("/healthz", portal.healthz),
        Route("/readyz", portal.readyz),
        Route("/metrics", portal.metrics),
        Route("/login", portal.account_pages.login_page, methods=["GET"]),
        Route("/login", portal.account_pages.login, methods=["POST"]),
        Route("/logout", portal.account_pages.logout, methods=["POST"]),
        Route("/members", portal.members),
        Route("/members/notices/{thread_id}", portal.notice_page),
        Route("/members/status/stream", portal.status_stream),
        Route("/hq", portal.hq),
        Route("/hq/live/stream", portal.live_stream),
        Route("/hq/review/{event_id}", portal.review, methods=["POST"]),
        Route("/hq/audit", portal.audit),
        Route("/admin", portal.account_pages.admin),
        Route("/admin/accounts", portal.account_pages.change, methods=["POST"]),
        Route("/admin/accounts/{account_id}/{action}", portal.account_pages.change, methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    if api is not None:
        routes.append(Mount("/api/v1", app=api.app()))
    middleware = [
        Middleware(RequestMetrics, routes=routes),
        Middleware(SecurityHeaders, https=portal.settings.portal_cookie_secure),
        Middleware(SessionLoader, codec=portal.sessions, directory=portal.directory, clock=portal.clock),
    ]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


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

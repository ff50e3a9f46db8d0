"""Account administration and the login door: what an administrator may do to accounts (the same functions serve
the portal's ``/admin`` page and ``firebus accounts``), and the login, logout and admin pages.

Every change and every login attempt is written to the security log with the client address (``cli`` for the
command line). Login attempts are throttled per account and per client address (:func:`throttle_wait`); a throttled
attempt is refused before its password is even checked.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import structlog
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from consumers.portal.accounts import (
    ROLE_NAMES,
    SECURITY_NAMES,
    Account,
    Area,
    Directory,
    Role,
    Security,
    SecurityEvent,
    account_problem,
    may_manage,
    new_session_token,
    password_problem,
    refuse,
    throttle_wait,
)
from consumers.portal.auth import Session, hash_password, password_matches, safe_next
from consumers.portal.security import client_address
from firebus.county import County
from firebus.errors import AccountError

if TYPE_CHECKING:
    from consumers.portal.app import Portal

log = structlog.get_logger(__name__)

CLI_ACTOR = "cli"

# --- what an administrator may do (portal page and command line) ---------------------------------------------


async def add_account(
    directory: Directory,
    county: County,
    *,
    actor: Account | None,
    account_id: str,
    name: str,
    unit: str,
    role: Role,
    password: str,
    now: datetime,
    client: str = CLI_ACTOR,
) -> Account:
    """Create an account; ``actor`` None is the command line (an operator on the server: any unit and role)."""
    problem = account_problem(county, account_id=account_id, name=name, unit=unit, role=role, password=password)
    if problem is not None:
        raise refuse(problem, account_id)
    if actor is not None and not may_manage(actor, unit=unit, role=role):
        raise refuse("not_allowed", account_id)
    account = Account(id=account_id, name=name.strip(), unit=unit, role=role, password_hash=hash_password(password))
    await directory.add(account)
    await _record(directory, Security.ACCOUNT_ADDED, account, actor=actor, now=now, client=client, detail=role.value)
    return account


async def _managed(directory: Directory, actor: Account | None, account_id: str) -> Account:
    account = await directory.account(account_id)
    if account is None:
        raise refuse("unknown_account", account_id)
    if actor is not None and not may_manage(actor, unit=account.unit, role=account.role):
        raise refuse("not_allowed", account_id)
    return account


async def set_disabled(
    directory: Directory,
    *,
    actor: Account | None,
    account_id: str,
    disabled: bool,
    now: datetime,
    client: str = CLI_ACTOR,
) -> int:
    """Disable (ending every session) or enable an account; the sessions ended."""
    account = await _managed(directory, actor, account_id)
    await directory.update(account_id, disabled=disabled)
    ended = await directory.end_sessions(account_id, now=now) if disabled else 0
    kind = Security.ACCOUNT_DISABLED if disabled else Security.ACCOUNT_ENABLED
    await _record(directory, kind, account, actor=actor, now=now, client=client, detail=f"sessions={ended}")
    return ended


async def change_password(
    directory: Directory,
    *,
    actor: Account | None,
    account_id: str,
    password: str,
    now: datetime,
    client: str = CLI_ACTOR,
) -> int:
    """Set a new password and end every session opened with the old one; the sessions ended."""
    problem = password_problem(password)
    if problem is not None:
        raise refuse(problem, account_id)
    account = await _managed(directory, actor, account_id)
    await directory.update(account_id, password_hash=hash_password(password))
    ended = await directory.end_sessions(account_id, now=now)
    await _record(directory, Security.PASSWORD_CHANGED, account, actor=actor, now=now, client=client)
    return ended


async def revoke_sessions(
    directory: Directory, *, actor: Account | None, account_id: str, now: datetime, client: str = CLI_ACTOR
) -> int:
    """End every live session of the account; how many."""
    account = await _managed(directory, actor, account_id)
    ended = await directory.end_sessions(account_id, now=now)
    await _record(
        directory, Security.SESSIONS_REVOKED, account, actor=actor, now=now, client=client, detail=f"sessions={ended}"
    )
    return ended


async def seed_demo_accounts(directory: Directory, accounts: list[Account]) -> int:
    """Put the demo accounts in the directory (demo mode only); those already there are kept as they are."""
    added = 0
    for account in accounts:
        if await directory.account(account.id) is None:
            await directory.add(account)
            added += 1
    return added


async def _record(
    directory: Directory,
    kind: Security,
    account: Account,
    *,
    actor: Account | None,
    now: datetime,
    client: str,
    detail: str = "",
) -> None:
    by = actor.id if actor is not None else CLI_ACTOR
    await directory.record(SecurityEvent(now, kind, account.id, client, by, account.unit, detail))
    log.info("portal_account_changed", change=kind.value, account=account.id, actor=by, client=client)


# --- pages ---------------------------------------------------------------------------------------------------

ADMIN_DONE = {
    "added": "已新建账号",
    "disabled": "已停用账号（其会话已注销）",
    "enabled": "已启用账号",
    "password": "已重设密码（其会话已注销）",
    "revoked": "已注销该账号的全部会话",
}
ADMIN_PROBLEMS = {
    "bad_account_id": "账号须为 2 至 63 个小写字母、数字、“.”、“_”或“-”，以字母或数字开头。",
    "bad_name": "姓名不能为空。",
    "weak_password": "密码至少 10 个字符。",
    "unknown_unit": "单位不在本县单位名录中。",
    "hq_role_outside_hq": "指挥部角色只能属于县森防办。",
    "not_a_reviewer": "指挥部审核员须是县配置（county.toml）中登记的审核员，账号与单位一致。",
    "not_allowed": "您无权管理该单位或该角色的账号。",
    "account_exists": "该账号已存在。",
    "unknown_account": "没有这个账号。",
}

LOGIN_ERRORS = {
    "wrong": "账号或密码错误。",
    "expired_form": "页面已过期，请重新登录。",
    "demo": "演示账号只能在演示模式（firebus up --demo）下使用。",
}


class AccountPages:
    """Login, logout and account administration, on the portal's sessions, directory and templates."""

    def __init__(self, portal: Portal) -> None:
        self.portal = portal

    async def login_page(self, request: Request) -> Response:
        return self.portal.render(request, "login.html", next=safe_next(request.query_params.get("next")), error=None)

    async def login(self, request: Request) -> Response:
        portal = self.portal
        form = await portal.form(request)
        if form is None:
            return portal.render(request, "login.html", status_code=403, next="/", error=LOGIN_ERRORS["expired_form"])
        target = safe_next(str(form.get("next") or ""))
        username = str(form.get("username") or "").strip()[:100]
        password = str(form.get("password") or "")
        client = client_address(request)
        now = portal.clock()
        directory = portal.directory
        wait = throttle_wait(
            await directory.failures(account_id=username, now=now),
            await directory.failures(client=client, now=now),
            now,
        )
        account = await directory.account(username)
        unit = account.unit if account is not None else ""
        if wait.total_seconds() > 0:
            seconds = int(wait.total_seconds()) + 1
            await directory.record(SecurityEvent(now, Security.LOGIN_THROTTLED, username, client, username, unit))
            log.warning("portal_login_throttled", account=username, client=client, wait_s=seconds)
            response = portal.render(
                request,
                "login.html",
                status_code=429,
                next=target,
                error=f"尝试次数过多，请 {seconds} 秒后再试。",
            )
            response.headers["Retry-After"] = str(seconds)
            return response
        demo_refused = account is not None and account.demo and not portal.settings.portal_demo
        if not password_matches(account, password) or demo_refused or account is None:
            detail = "demo account outside demo mode" if demo_refused else ""
            await directory.record(SecurityEvent(now, Security.LOGIN_FAILED, username, client, username, unit, detail))
            log.info("portal_login_failed", account=username, client=client, demo_refused=demo_refused)
            error = LOGIN_ERRORS["demo"] if demo_refused else LOGIN_ERRORS["wrong"]
            return portal.render(request, "login.html", status_code=401, next=target, error=error)
        token = new_session_token()
        await directory.open_session(token, account.id, client=client, now=now)
        await directory.record(SecurityEvent(now, Security.LOGIN_OK, account.id, client, account.id, account.unit))
        log.info("portal_login", account=account.id, role=account.role.value, client=client)
        if target == "/":
            target = "/hq" if account.role.hq else "/members"
        response = RedirectResponse(target, status_code=303)
        return portal.set_session(response, portal.session_of(request).login(token))

    async def logout(self, request: Request) -> Response:
        portal = self.portal
        if await portal.form(request) is None:
            return portal.render(request, "forbidden.html", status_code=403)
        session = portal.session_of(request)
        account = portal.account_of(request)
        if session.token is not None:
            now = portal.clock()
            await portal.directory.end_session(session.token, now=now)
            portal.streams.end(session.token)
            if account is not None:
                client = client_address(request)
                await portal.directory.record(
                    SecurityEvent(now, Security.LOGOUT, account.id, client, account.id, account.unit)
                )
                log.info("portal_logout", account=account.id, client=client)
        return portal.set_session(RedirectResponse("/", status_code=303), Session.anonymous())

    async def admin(self, request: Request) -> Response:
        gated = self.portal.gate(request, Area.ADMIN)
        if not isinstance(gated, Account):
            return gated
        done = request.query_params.get("done")
        return await self._page(request, gated, done=ADMIN_DONE.get(done) if done else None)

    async def _page(
        self, request: Request, actor: Account, *, done: str | None = None, error: str | None = None
    ) -> Response:
        portal = self.portal
        unit = None if actor.role is Role.HQ_ADMIN else actor.unit
        accounts = await portal.directory.accounts(unit=unit)
        sessions = await portal.directory.live_sessions(now=portal.clock())
        live: dict[str, int] = {}
        for info in sessions:
            live[info.account_id] = live.get(info.account_id, 0) + 1
        units = [known for known in portal.county.units if unit is None or known.id == unit]
        roles = [role for role in Role if may_manage(actor, unit=actor.unit, role=role)]
        return portal.render(
            request,
            "admin.html",
            status_code=400 if error else 200,
            accounts=accounts,
            live=live,
            units=units,
            roles=roles,
            role_names=ROLE_NAMES,
            security_names=SECURITY_NAMES,
            log_lines=await portal.directory.security_log(unit=unit, limit=100),
            done=done,
            error=error,
        )

    async def change(self, request: Request) -> Response:
        """POST /admin/accounts (new) and /admin/accounts/{id}/{action}: disable, enable, password, revoke."""
        portal = self.portal
        gated = portal.gate(request, Area.ADMIN)
        if not isinstance(gated, Account):
            return gated
        form = await portal.form(request)
        if form is None:
            return portal.render(request, "forbidden.html", status_code=403)
        now = portal.clock()
        client = client_address(request)
        action = request.path_params.get("action", "add")
        account_id = request.path_params.get("account_id", "")
        try:
            if action == "add":
                try:
                    role = Role(str(form.get("role") or ""))
                except ValueError:
                    raise refuse("not_allowed") from None
                await add_account(
                    portal.directory,
                    portal.county,
                    actor=gated,
                    account_id=str(form.get("account_id") or "").strip(),
                    name=str(form.get("name") or ""),
                    unit=str(form.get("unit") or ""),
                    role=role,
                    password=str(form.get("password") or ""),
                    now=now,
                    client=client,
                )
                done = "added"
            elif action in ("disable", "enable"):
                await set_disabled(
                    portal.directory,
                    actor=gated,
                    account_id=account_id,
                    disabled=action == "disable",
                    now=now,
                    client=client,
                )
                done = f"{action}d"
            elif action == "password":
                await change_password(
                    portal.directory,
                    actor=gated,
                    account_id=account_id,
                    password=str(form.get("password") or ""),
                    now=now,
                    client=client,
                )
                done = "password"
            elif action == "revoke":
                await revoke_sessions(portal.directory, actor=gated, account_id=account_id, now=now, client=client)
                done = "revoked"
            else:
                return portal.render(request, "not_found.html", status_code=404)
        except AccountError as exc:
            return await self._page(request, gated, error=ADMIN_PROBLEMS.get(exc.code, ADMIN_PROBLEMS["not_allowed"]))
        if action in ("disable", "password", "revoke"):
            portal.streams.end_account(account_id)
        return RedirectResponse(f"/admin?done={done}", status_code=303)

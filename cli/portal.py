"""``firebus portal``: the portal web app, given the client library's review desk for the HQ console and its per-unit
clients for the HTTP API (``/api/v1``)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from cli.api_keys import api_document, api_store
from cli.commands import Commands, say
from cli.supervisor import shout
from firebus.broker import ensure_port_free
from firebus.codec import Codec
from firebus.county import load_county
from firebus.errors import ConfigurationError
from firebus.settings import Settings

if TYPE_CHECKING:
    from consumers.portal import Api, Portal
    from producers import UnitClients


async def cmd_portal(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.portal import (
        Directory,
        MemoryDirectory,
        Portal,
        PostgresDirectory,
        hash_password,
        load_accounts,
        seed_demo_accounts,
        serve,
    )
    from producers import ReviewDesk, UnitClients

    if args.hash_password:
        password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise ConfigurationError("give the password on standard input")
        say(hash_password(password))
        return 0
    if args.port:
        settings = settings.model_copy(update={"portal_port": args.port})
    ensure_port_free(settings.portal_host, settings.portal_port, what="the portal", setting="FIREBUS_PORTAL_PORT")
    county = load_county(settings.config)
    codec = Codec()
    desk = ReviewDesk(settings=settings, county=county, codec=codec)
    directory: Directory = PostgresDirectory(settings.archive_dsn.get_secret_value())
    try:
        await directory.start()
    except ConfigurationError as exc:
        if not settings.portal_demo:
            raise
        # A newcomer's `firebus up --demo` on a machine without PostgreSQL still gets a portal to log in to.
        shout(f"firebus portal: {exc}; demo mode: accounts and sessions kept in memory until the portal stops")
        directory = MemoryDirectory()
    if settings.portal_demo:
        seeded = await seed_demo_accounts(directory, load_accounts(settings.portal_accounts))
        say(f"firebus portal: demo mode, {seeded} demo account(s) seeded")
    portal = Portal(settings=settings, county=county, desk=desk, codec=codec, directory=directory)
    api = http_api(settings, portal, UnitClients(settings=settings, county=county, codec=codec))
    say(f"firebus portal on http://{settings.portal_host}:{settings.portal_port}/")
    await serve(portal, api=api)
    return 0


def http_api(settings: Settings, portal: Portal, clients: UnitClients) -> Api:
    """The HTTP API over the portal's state, publishing through the client library's per-unit clients."""
    from consumers.portal import Api, RequestBudget

    return Api(
        county=portal.county,
        publisher=clients,
        store=api_store(settings),
        state=portal.state,
        openapi=api_document(),
        budget=RequestBudget(rate_per_minute=settings.api_rate_per_minute, burst=settings.api_burst),
        codec=portal.codec,
    )


def register(commands: Commands) -> None:
    portal = commands.command(
        "portal", cmd_portal, "run the portal web app: public board, member area, HQ console", long_running=True
    )
    portal.add_argument("--port", type=int, help="port (default: FIREBUS_PORTAL_PORT or 8080)")
    portal.add_argument("--hash-password", action="store_true", help="print a scrypt hash of the password on stdin")

"""The portal sink (门户网站): public board and feeds, member area, HQ console with live fires, review and audit.

Person accounts, server-side sessions and the security log live in PostgreSQL (:class:`PostgresDirectory`).
It reads the tier topics and the HQ live topic from the beginning without a consumer group (a view, rebuilt on
start) and publishes review decisions through the :class:`DecisionDesk` it is given (the client library's review
desk, injected by the CLI). Department systems without Kafka use its HTTP API at ``/api/v1``
(:mod:`consumers.portal.api`), which publishes through the client library's per-unit clients, injected the same way.
"""

from consumers.portal.accounts import Account, Area, Directory, MemoryDirectory, Role
from consumers.portal.accounts_db import PostgresDirectory
from consumers.portal.admin import add_account, change_password, revoke_sessions, seed_demo_accounts, set_disabled
from consumers.portal.api import Api, RequestBudget, UnitPublisher, tier_of
from consumers.portal.api_openapi import openapi_document, openapi_json
from consumers.portal.api_store import ApiStore, Credential
from consumers.portal.app import DecisionDesk, Portal, create_app, serve
from consumers.portal.auth import Session, SessionCodec, hash_password, load_accounts
from consumers.portal.bench import bench_console
from consumers.portal.board import Board, Notice, Thread
from consumers.portal.feeds import atom_feed, cap_alert
from consumers.portal.latency import ConsoleLoad, bench_console_latency
from consumers.portal.state import PortalState

__all__ = [
    "Account",
    "Api",
    "ApiStore",
    "Area",
    "Board",
    "ConsoleLoad",
    "Credential",
    "DecisionDesk",
    "Directory",
    "MemoryDirectory",
    "Notice",
    "Portal",
    "PortalState",
    "PostgresDirectory",
    "RequestBudget",
    "Role",
    "Session",
    "SessionCodec",
    "Thread",
    "UnitPublisher",
    "add_account",
    "atom_feed",
    "bench_console",
    "bench_console_latency",
    "cap_alert",
    "change_password",
    "create_app",
    "hash_password",
    "load_accounts",
    "openapi_document",
    "openapi_json",
    "revoke_sessions",
    "seed_demo_accounts",
    "serve",
    "set_disabled",
    "tier_of",
]

"""The portal sink (门户网站): public board and feeds, member area, HQ console with live fires, review and audit.

It reads the tier topics and the HQ live topic from the beginning without a consumer group (a view, rebuilt on
start) and publishes review decisions through the :class:`DecisionDesk` it is given (the client library's review
desk, injected by the CLI). Department systems without Kafka use its HTTP API at ``/api/v1``
(:mod:`consumers.portal.api`), which publishes through the client library's per-unit clients, injected the same way.
"""

from consumers.portal.api import Api, RequestBudget, UnitPublisher, tier_of
from consumers.portal.api_openapi import openapi_document, openapi_json
from consumers.portal.api_store import ApiStore, Credential
from consumers.portal.app import DecisionDesk, Portal, create_app, serve
from consumers.portal.auth import Account, Accounts, Role, Session, SessionCodec, hash_password, load_accounts
from consumers.portal.board import Board, Notice, Thread
from consumers.portal.feeds import atom_feed, cap_alert
from consumers.portal.state import PortalState

__all__ = [
    "Account",
    "Accounts",
    "Api",
    "ApiStore",
    "Board",
    "Credential",
    "DecisionDesk",
    "Notice",
    "Portal",
    "PortalState",
    "RequestBudget",
    "Role",
    "Session",
    "SessionCodec",
    "Thread",
    "UnitPublisher",
    "atom_feed",
    "cap_alert",
    "create_app",
    "hash_password",
    "load_accounts",
    "openapi_document",
    "openapi_json",
    "serve",
    "tier_of",
]

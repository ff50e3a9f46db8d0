"""The portal sink (门户网站): public board and feeds, member area, HQ console with live fires, review and audit.

It reads the tier topics and the HQ live topic from the beginning without a consumer group (a view, rebuilt on
start) and publishes review decisions through the :class:`DecisionDesk` it is given (the client library's review
desk, injected by the CLI).
"""

from consumers.portal.app import DecisionDesk, Portal, create_app, serve
from consumers.portal.auth import Account, Accounts, Role, Session, SessionCodec, hash_password, load_accounts
from consumers.portal.bench import bench_console
from consumers.portal.board import Board, Notice, Thread
from consumers.portal.feeds import atom_feed, cap_alert
from consumers.portal.state import PortalState

__all__ = [
    "Account",
    "Accounts",
    "Board",
    "DecisionDesk",
    "Notice",
    "Portal",
    "PortalState",
    "Role",
    "Session",
    "SessionCodec",
    "Thread",
    "atom_feed",
    "bench_console",
    "cap_alert",
    "create_app",
    "hash_password",
    "load_accounts",
    "serve",
]

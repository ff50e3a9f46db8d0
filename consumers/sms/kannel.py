"""The SMS gateway seam: Kannel's HTTP ``sendsms`` interface (smsbox ``/cgi-bin/sendsms``).

Each call hands one SMS part to the gateway: text as UTF-16BE (``charset=UTF-16BE&coding=2``, i.e. UCS-2 on the
air), the concatenation header in ``udh`` when the message has several parts, so the gateway never re-splits what
:mod:`consumers.sms.segmentation` cut. Its errors are the :class:`~firebus.errors.GatewayError` branch of the one
error tree: unavailable (retry later), rejected (failed for good) or uncertain (maybe taken: a time-out, or the
connection broken once the request was out; never sent again, by aiohttp's own retry neither).

aiohttp errors never leak past this module; the password is never logged.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlencode

import aiohttp
import structlog
from pydantic import SecretStr
from yarl import URL

from firebus.errors import GatewayRejectedError, GatewayUnavailableError, GatewayUncertainError

log = structlog.get_logger(__name__)


async def _never_resend(request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType) -> aiohttp.ClientResponse:
    """aiohttp sends a GET once more when its connection breaks before the answer (RFC 9112 allows that for
    idempotent methods); a sendsms GET is not idempotent, the gateway may have taken the part, so the break is
    reported as uncertain (not an aiohttp error, so aiohttp does not retry it) and the part never re-sent."""
    try:
        return await handler(request)
    except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError):
        raise  # never connected: nothing went out
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        raise GatewayUncertainError(f"no answer from the SMS gateway: {exc.__class__.__name__}") from exc


class Gateway(Protocol):
    """What the SMS sink needs of a gateway."""

    async def start(self) -> None: ...

    async def submit(self, *, to: str, text: str, udh: bytes | None) -> str:
        """Hand one part to the gateway; its reply (``0: Accepted for delivery``) when taken."""

    async def close(self) -> None: ...


class KannelGateway:
    """A Kannel smsbox ``sendsms`` client (one HTTP GET per part)."""

    def __init__(
        self, *, url: str, username: str, password: SecretStr, sender: str | None = None, timeout_s: float = 10.0
    ) -> None:
        self.url = url
        self.username = username
        self._password = password
        self.sender = sender
        self.timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s, sock_connect=min(self.timeout_s, 5.0)),
                middlewares=(_never_resend,),
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def request_url(self, *, to: str, text: str, udh: bytes | None) -> URL:
        """The full sendsms URL of one part (it holds the password: never log it)."""
        query: dict[str, str | bytes] = {
            "username": self.username,
            "password": self._password.get_secret_value(),
            "to": to,
            "text": text.encode("utf-16-be"),
            "charset": "UTF-16BE",
            "coding": "2",
        }
        if self.sender:
            query["from"] = self.sender
        if udh:
            query["udh"] = udh
        return URL(f"{self.url}?{urlencode(query)}", encoded=True)

    async def submit(self, *, to: str, text: str, udh: bytes | None) -> str:
        if self._session is None:
            raise GatewayUnavailableError("the gateway client is not started")
        try:
            async with self._session.get(self.request_url(to=to, text=text, udh=udh)) as response:
                reply = (await response.read()).decode("utf-8", "replace").strip()
                status = response.status
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise GatewayUnavailableError(
                f"cannot reach the SMS gateway at {self.url}: {exc.__class__.__name__}"
            ) from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise GatewayUncertainError(f"no answer from the SMS gateway: {exc.__class__.__name__}") from exc
        if status in (200, 202):
            return reply
        if status in (401, 403) or status >= 500:
            raise GatewayUnavailableError(f"SMS gateway answered {status}: {reply}")
        raise GatewayRejectedError(f"SMS gateway refused the message ({status}): {reply}")

"""``firebus api-keys create|list|revoke``: the HTTP API's per-unit credentials; ``firebus openapi``: its document."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from cli.commands import Commands, json_option, say, say_json
from firebus.county import load_county
from firebus.errors import ConfigurationError
from firebus.settings import Settings

if TYPE_CHECKING:
    from consumers.portal import ApiStore, Credential

OPENAPI_REFS = "#/components/schemas/{model}"


def api_document() -> dict[str, Any]:
    """The OpenAPI document: the portal's paths with the client library's draft schemas."""
    from consumers.portal import openapi_document
    from producers import draft_json_schemas

    return openapi_document(*draft_json_schemas(OPENAPI_REFS))


def api_store(settings: Settings) -> ApiStore:
    from consumers.portal import ApiStore

    return ApiStore(dsn=settings.archive_dsn.get_secret_value())


def _shown(credential: Credential) -> dict[str, Any]:
    return {
        "credential_id": credential.credential_id,
        "unit": credential.unit,
        "label": credential.label,
        "created_at": credential.created_at.isoformat(),
        "revoked_at": credential.revoked_at.isoformat() if credential.revoked_at else None,
    }


async def cmd_create(args: argparse.Namespace, settings: Settings) -> int:
    unit = load_county(settings.config).unit(args.unit)  # an unknown unit is refused, naming it
    credential, token = await api_store(settings).create(unit=unit.id, label=args.label or unit.name)
    if args.json:
        say_json({**_shown(credential), "token": token})
        return 0
    say(f"credential {credential.credential_id} for {unit.id} ({unit.name})")
    say(f"token: {token}")
    say("give the token to the unit's system over a safe channel; it is not shown again")
    return 0


async def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    if args.unit:
        load_county(settings.config).unit(args.unit)
    found = await api_store(settings).credentials(unit=args.unit)
    if args.json:
        say_json({"credentials": [_shown(credential) for credential in found]})
        return 0
    say(f"{'credential':<16} {'unit':<14} {'created (UTC)':<17} {'state':<24} label")
    for credential in found:
        state = f"revoked {credential.revoked_at:%Y-%m-%d %H:%M}" if credential.revoked_at else "active"
        say(
            f"{credential.credential_id:<16} {credential.unit:<14} {credential.created_at:%Y-%m-%d %H:%M} "
            f"{state:<24} {credential.label}"
        )
    say(f"{len(found)} credential(s)")
    return 0


async def cmd_revoke(args: argparse.Namespace, settings: Settings) -> int:
    store = api_store(settings)
    if args.unit:
        owned = {credential.credential_id for credential in await store.credentials(unit=args.unit)}
        if args.credential_id not in owned:
            raise ConfigurationError(f"unit {args.unit} has no credential {args.credential_id}")
    revoked = await store.revoke(args.credential_id)
    if revoked is None:
        raise ConfigurationError(f"no credential {args.credential_id} (see `firebus api-keys list`)")
    say(f"revoked {revoked.credential_id} of {revoked.unit}: its token is refused from the next request on")
    return 0


def cmd_openapi(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.portal import openapi_json
    from producers import draft_json_schemas

    sys.stdout.write(openapi_json(*draft_json_schemas(OPENAPI_REFS)))
    return 0


def register(commands: Commands) -> None:
    keys = commands.group("api-keys", "credentials of the HTTP API (/api/v1): one or more bearer tokens per unit")
    create = keys.command("create", cmd_create, "make a credential for a unit and print its token once")
    create.add_argument("--unit", required=True, help="unit id from the county configuration")
    create.add_argument("--label", help="what the credential is for (default: the unit's name)")
    json_option(create)
    listing = keys.command("list", cmd_list, "credentials, revoked ones included (never the tokens)")
    listing.add_argument("--unit", help="only this unit's")
    json_option(listing)
    revoke = keys.command("revoke", cmd_revoke, "revoke a credential at once")
    revoke.add_argument("credential_id")
    revoke.add_argument("--unit", help="refuse unless the credential is this unit's")
    commands.command("openapi", cmd_openapi, "print the OpenAPI 3.1 document of the HTTP API (docs/openapi.json)")

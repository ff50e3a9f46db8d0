"""``firebus review list|show|approve|reject``: the HQ office's review queue (每发必审) from a shell."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING
from uuid import UUID

from cli.commands import Commands, json_option, say, say_json
from firebus.county import load_county
from firebus.errors import ConfigurationError
from firebus.events import Audience
from firebus.records import ReviewStatus, Verdict
from firebus.settings import Settings

if TYPE_CHECKING:
    from producers import ReviewDesk


def review_desk(settings: Settings) -> ReviewDesk:
    from producers import ReviewDesk

    return ReviewDesk(settings=settings, county=load_county(settings.config))


async def cmd_review_list(args: argparse.Namespace, settings: Settings) -> int:
    items = sorted((await review_desk(settings).items()).values(), key=lambda item: item.received_at)
    shown = [item for item in items if args.all or item.status is ReviewStatus.PENDING]
    if args.json:
        say_json({"items": [item.model_dump(mode="json", exclude={"event"}) for item in shown]})
        return 0
    say(f"{'event id':<36}  {'type':<15} {'status':<9} {'publisher':<12} {'audience':<8} {'severity':<8} deadline")
    for item in shown:
        late = "  ESCALATED" if item.escalated else ""
        say(
            f"{item.event_id!s:<36}  {item.event_type.value:<15} {item.status.value:<9} {item.publisher_unit:<12} "
            f"{item.audience.value:<8} {item.severity.value:<8} {item.deadline:%Y-%m-%d %H:%M}Z{late}"
        )
    say(f"{len(shown)} item(s){'' if args.all else ' pending'}")
    return 0


def event_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise ConfigurationError(f"{text!r} is not an event id (a UUID)") from None


async def cmd_review_show(args: argparse.Namespace, settings: Settings) -> int:
    desk = review_desk(settings)
    item = await desk.item(event_id(args.event_id))
    shown = item.model_dump(mode="json", exclude={"event"})
    shown["event"] = desk.codec.decode(item.event).model_dump(mode="json")
    say_json(shown, pretty=True)
    return 0


async def decide(
    args: argparse.Namespace, settings: Settings, verdict: Verdict, *, tiers: list[Audience], redactions: list[str]
) -> int:
    desk = review_desk(settings)
    item = await desk.item(event_id(args.event_id))
    decision = desk.decision(
        item, reviewer=args.reviewer, verdict=verdict, reason=args.reason, tiers=tiers, redactions=redactions
    )
    await desk.publish(item, decision)
    say(f"{verdict.value}d {item.event_id} as {args.reviewer}: decision {decision.decision_id}")
    return 0


def audience(text: str) -> Audience:
    try:
        return Audience(text.strip())
    except ValueError:
        known = ", ".join(tier.value for tier in Audience)
        raise ConfigurationError(f"{text!r} is not a tier ({known})") from None


async def cmd_review_approve(args: argparse.Namespace, settings: Settings) -> int:
    tiers = [audience(tier) for tier in args.tiers.split(",")] if args.tiers else []
    return await decide(args, settings, Verdict.APPROVE, tiers=tiers, redactions=args.redact)


async def cmd_review_reject(args: argparse.Namespace, settings: Settings) -> int:
    return await decide(args, settings, Verdict.REJECT, tiers=[], redactions=[])


def register(commands: Commands) -> None:
    review = commands.group("review", "the HQ office's review queue (每发必审)")
    listing = review.command("list", cmd_review_list, "items awaiting review")
    listing.add_argument("--all", action="store_true", help="also decided and withdrawn items")
    json_option(listing)
    review.command("show", cmd_review_show, "one item with its event").add_argument("event_id")
    approve = review.command("approve", cmd_review_approve, "approve an item for release")
    reject = review.command("reject", cmd_review_reject, "reject an item")
    for decide in (approve, reject):
        decide.add_argument("event_id")
        decide.add_argument("--reviewer", required=True, help="your reviewer id from the county configuration")
    approve.add_argument("--tiers", help="comma-separated tiers to release to (default: all the audience allows)")
    approve.add_argument("--redact", action="append", default=[], metavar="FIELD", help="also hide this field below HQ")
    approve.add_argument("--reason")
    reject.add_argument("--reason", required=True)

"""SMS parts counted by outcome, through the real Kannel: sent, uncertain (no answer: never sent again) and refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import REGISTRY

from consumers.sms import PartStatus
from tests.consumers.sms.conftest import Kannel, Receiver, Unanswered
from tests.consumers.sms.samples import fire_event, release_of
from tests.consumers.sms.test_sms_kannel import (
    MANGHE_MEMBERS,
    deliver_as_the_runner_does,
    delivery,
    make_sink,  # noqa: F401  (a fixture)
    reference,
)


def parts(outcome: str) -> float:
    return REGISTRY.get_sample_value("firebus_sms_parts_total", {"outcome": outcome}) or 0.0


async def test_parts_are_counted_as_sent_uncertain_or_refused(
    make_sink: Callable[..., Any],  # noqa: F811
    receiver: Receiver,
    kannel: Kannel,
) -> None:
    """Every part Kannel took counts as sent, a part whose answer was lost as uncertain, and a message the gateway
    refused for good (it answered 404) as refused, once per recipient."""
    sent, uncertain, refused = parts("sent"), parts("uncertain"), parts("refused")
    event = fire_event()
    sink = await make_sink()
    await sink.deliver(delivery(release_of(event)))
    await receiver.wait_for(len(MANGHE_MEMBERS), reference(event))
    handed = sum(len(sink.ledger.parts(event.header.event_id, phone)) for phone in MANGHE_MEMBERS)
    assert handed >= len(MANGHE_MEMBERS)
    assert parts("sent") - sent == handed
    assert parts("uncertain") == uncertain

    lost = fire_event()
    async with Unanswered(kannel.url) as hop:
        through_hop = await make_sink(sms_gateway_url=hop.url, sms_timeout_s=1.0)
        await deliver_as_the_runner_does(through_hop, release_of(lost))
    statuses = [
        status for phone in MANGHE_MEMBERS for status in through_hop.ledger.parts(lost.header.event_id, phone).values()
    ]
    assert parts("uncertain") - uncertain == statuses.count(PartStatus.UNCERTAIN) == 1

    wrong_path = await make_sink(sms_gateway_url=kannel.url.replace("/cgi-bin/sendsms", "/cgi-bin/no-such-page"))
    await wrong_path.deliver(delivery(release_of(fire_event())))
    assert parts("refused") - refused == len(MANGHE_MEMBERS)

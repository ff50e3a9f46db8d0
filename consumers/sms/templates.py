"""zh-CN SMS texts, one template per event type: what, where, status, when — then who published it and a reference.

Every text reads ``【<county>森防指】<更新/撤销：><facts>（<publisher>发布，编号<incident>·<event>）``. The facts are
each event type's own template (:meth:`firebus.catalogue.EventKind.sms`), with times in the county's time zone;
they are cut (ending with …) when the whole would need more than ``max_parts`` SMS parts; the publisher and the
reference are always kept. Texts are built from the *released* (tier-redacted) event only, and never name suspects,
reporters or coordinates.
"""

from __future__ import annotations

from typing import Any

from consumers.sms.segmentation import fit
from firebus.catalogue import CountyWords, kind_of
from firebus.county import County
from firebus.events import Event, MessageKind
from firebus.records import Release

KIND = {MessageKind.ALERT: "", MessageKind.UPDATE: "更新：", MessageKind.CANCEL: "撤销："}


class Texts:
    """Renders the SMS text of a released event for one county (its names and time zone) and longest length."""

    def __init__(self, *, county: County, max_parts: int) -> None:
        self.county = county
        self.words = CountyWords.of(county)
        self.max_parts = max_parts

    def render(self, event: Event[Any], release: Release) -> str:
        """The whole SMS text of ``event`` as released in ``release``, at most ``max_parts`` parts long."""
        header = event.header
        facts = kind_of(event.event_type).sms(event, release.nearby_resources, self.words)
        head = f"【{self.county.county.name}森防指】{KIND[header.kind]}{facts}"
        reference = f"{header.incident_id}·{header.event_id.hex[:8]}" if header.incident_id else header.event_id.hex[:8]
        tail = f"（{self.words.unit(release.publisher_unit)}发布，编号{reference}）"
        return fit(head, tail, max_parts=self.max_parts)

"""The public tier as feeds: OASIS CAP 1.2 alert messages and an Atom (RFC 4287) feed.

Pure functions from notices to XML bytes. CAP times are ``2026-03-12T13:42:00+08:00`` (the county's offset, no
fractions, never ``Z``) as CAP 1.2 §3.3.2 requires; an update or cancel names the messages it refers to in
``references`` as ``sender,identifier,sent`` triples.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo
from typing import Any
from uuid import UUID
from xml.etree import ElementTree as ET

from consumers.portal.board import Notice, Thread
from consumers.portal.describe import facts, title
from firebus.catalogue import CountyWords, kind_of
from firebus.events import MessageKind, Severity, Urgency

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"

CAP_MSG_TYPES: dict[MessageKind, str] = {
    MessageKind.ALERT: "Alert",
    MessageKind.UPDATE: "Update",
    MessageKind.CANCEL: "Cancel",
}
CAP_URGENCY: dict[Urgency, str] = {
    Urgency.IMMEDIATE: "Immediate",
    Urgency.EXPECTED: "Expected",
    Urgency.FUTURE: "Future",
    Urgency.PAST: "Past",
    Urgency.UNKNOWN: "Unknown",
}
CAP_SEVERITY: dict[Severity, str] = {
    Severity.EXTREME: "Extreme",
    Severity.SEVERE: "Severe",
    Severity.MODERATE: "Moderate",
    Severity.MINOR: "Minor",
    Severity.UNKNOWN: "Unknown",
}


def cap_time(moment: datetime, zone: tzinfo) -> str:
    """A CAP 1.2 dateTime: local time in ``zone`` (the county's) with its offset, whole seconds."""
    return moment.astimezone(zone).replace(microsecond=0).isoformat()


def cap_certainty(notice: Notice) -> str:
    """How sure the publisher is, as the notice's event type judges it (see :mod:`firebus.catalogue`)."""
    return kind_of(notice.event_type).cap_certainty(notice.event.body)


def cap_alert(
    notice: Notice,
    *,
    sender: str,
    sender_name: str,
    words: CountyWords,
    county_name: str,
    lookup: Callable[[UUID], Notice | None],
    web: str | None = None,
) -> bytes:
    """One CAP 1.2 ``<alert>`` for a public notice; references resolve through ``lookup`` (unknown ones left out)."""
    header = notice.event.header
    ET.register_namespace("", CAP_NS)
    alert = ET.Element(f"{{{CAP_NS}}}alert")
    _sub(alert, "identifier", str(notice.event_id))
    _sub(alert, "sender", sender)
    _sub(alert, "sent", cap_time(header.published_at, words.zone))
    _sub(alert, "status", "Actual")
    _sub(alert, "msgType", CAP_MSG_TYPES[notice.kind])
    _sub(alert, "scope", "Public")
    references = [
        f"{sender},{referenced.event_id},{cap_time(referenced.published_at, words.zone)}"
        for referenced in (lookup(event_id) for event_id in header.references)
        if referenced is not None
    ]
    if notice.kind is not MessageKind.ALERT and references:
        _sub(alert, "references", " ".join(references))
    if header.incident_id:
        # CAP separates incidents by whitespace: one id stays one token, whatever spaces, tabs or newlines it holds.
        _sub(alert, "incidents", re.sub(r"\s", "_", header.incident_id))
    info = ET.SubElement(alert, f"{{{CAP_NS}}}info")
    _sub(info, "language", "zh-CN")
    kind = kind_of(notice.event_type)
    for category in kind.cap_categories:
        _sub(info, "category", category)
    _sub(info, "event", kind.name)
    _sub(info, "urgency", CAP_URGENCY[header.urgency])
    _sub(info, "severity", CAP_SEVERITY[header.severity])
    _sub(info, "certainty", cap_certainty(notice))
    body: Any = notice.event.body
    for name, moment in kind.cap_times(body)._asdict().items():
        if moment is not None:
            _sub(info, name, cap_time(moment, words.zone))
    _sub(info, "senderName", sender_name)
    _sub(info, "headline", title(notice.event, words))
    _sub(info, "description", "\n".join(f"{label}：{value}" for label, value in facts(notice.event, words)))
    instructions = kind.cap_instructions(body)
    if instructions:
        _sub(info, "instruction", "\n".join(instructions))
    if web:
        _sub(info, "web", web)
    area = ET.SubElement(info, f"{{{CAP_NS}}}area")
    _sub(area, "areaDesc", county_name + (words.township_list(header.townships) or "全县"))
    return _document(alert)


def atom_feed(
    threads: Sequence[Thread],
    *,
    feed_id: str,
    feed_title: str,
    base_url: str,
    words: CountyWords,
    updated: datetime,
) -> bytes:
    """An Atom feed with one entry per thread, showing its current state (newest first)."""
    ET.register_namespace("", ATOM_NS)
    feed = ET.Element(f"{{{ATOM_NS}}}feed", {"{http://www.w3.org/XML/1998/namespace}lang": "zh-CN"})
    _atom(feed, "id", feed_id)
    _atom(feed, "title", feed_title)
    newest = max((thread.current.release.released_at for thread in threads), default=updated)
    _atom(feed, "updated", _rfc3339(newest, words.zone))
    ET.SubElement(feed, f"{{{ATOM_NS}}}link", {"rel": "self", "href": f"{base_url}/feed.atom"})
    ET.SubElement(feed, f"{{{ATOM_NS}}}link", {"rel": "alternate", "type": "text/html", "href": f"{base_url}/"})
    for thread in threads:
        notice = thread.current
        entry = ET.SubElement(feed, f"{{{ATOM_NS}}}entry")
        _atom(entry, "id", f"urn:uuid:{notice.event_id}")
        state = "【已撤销】" if thread.cancelled else ("【更新】" if notice.kind is MessageKind.UPDATE else "")
        _atom(entry, "title", state + title(notice.event, words))
        _atom(entry, "updated", _rfc3339(notice.release.released_at, words.zone))
        _atom(entry, "published", _rfc3339(notice.published_at, words.zone))
        author = ET.SubElement(entry, f"{{{ATOM_NS}}}author")
        _atom(author, "name", words.unit(notice.release.publisher_unit))
        _atom(entry, "category", None, term=notice.event_type.value, label=kind_of(notice.event_type).name)
        link = f"{base_url}/notices/{thread.thread_id}"
        ET.SubElement(entry, f"{{{ATOM_NS}}}link", {"rel": "alternate", "type": "text/html", "href": link})
        ET.SubElement(
            entry,
            f"{{{ATOM_NS}}}link",
            {"rel": "related", "type": "application/cap+xml", "href": f"{base_url}/cap/{notice.event_id}.xml"},
        )
        lines = [f"{label}：{value}" for label, value in facts(notice.event, words)]
        lines += [f"历史：{_rfc3339(old.published_at, words.zone)} {title(old.event, words)}" for old in thread.history]
        _atom(entry, "summary", "\n".join(lines))
    return _document(feed)


def _sub(parent: ET.Element, name: str, text: str) -> None:
    ET.SubElement(parent, f"{{{CAP_NS}}}{name}").text = text


def _atom(parent: ET.Element, name: str, text: str | None, **attributes: str) -> None:
    element = ET.SubElement(parent, f"{{{ATOM_NS}}}{name}", attributes)
    if text is not None:
        element.text = text


def _rfc3339(moment: datetime, zone: tzinfo) -> str:
    return moment.astimezone(zone).replace(microsecond=0).isoformat()


def _document(root: ET.Element) -> bytes:
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document

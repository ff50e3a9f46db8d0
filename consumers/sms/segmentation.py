"""Splitting a Chinese text into UCS-2 SMS parts, and the concatenation header that joins them on the phone.

An SMS carries 140 octets. In UCS-2 (data coding 8, Kannel ``coding=2``) that is 70 characters for a single message;
a concatenated message spends 6 octets of each part on its user data header, leaving 67 characters per part.
Characters outside the Basic Multilingual Plane (rare CJK of place names, emoji) take two UTF-16 code units: they
count as two, and a part never ends between the two halves of one.
"""

from __future__ import annotations

SINGLE_UNITS = 70
"""UTF-16 code units in one unsegmented UCS-2 SMS."""

PART_UNITS = 67
"""UTF-16 code units in each part of a concatenated UCS-2 SMS (6 octets go to the header)."""

MAX_PARTS = 255
"""A concatenation header counts parts in one octet."""

ELLIPSIS = "…"


def units(text: str) -> int:
    """Length of ``text`` in UTF-16 code units: two for a character outside the BMP, one for any other."""
    return sum(2 if ord(char) > 0xFFFF else 1 for char in text)


def segment(text: str) -> tuple[str, ...]:
    """The parts ``text`` is sent as: itself when it fits one SMS, else as few parts of 67 units as it takes.

    Greedy from the start, which is also the fewest parts; a part never splits a character.
    """
    if units(text) <= SINGLE_UNITS:
        return (text,)
    parts: list[str] = []
    current: list[str] = []
    used = 0
    for char in text:
        width = 2 if ord(char) > 0xFFFF else 1
        if used + width > PART_UNITS:
            parts.append("".join(current))
            current, used = [], 0
        current.append(char)
        used += width
    parts.append("".join(current))
    if len(parts) > MAX_PARTS:
        raise ValueError(f"a text of {units(text)} units needs {len(parts)} parts; at most {MAX_PARTS} can be joined")
    return tuple(parts)


def capacity(parts: int) -> int:
    """Most units a text may have to be sent in at most ``parts`` parts."""
    if parts < 1:
        raise ValueError("an SMS has at least one part")
    return SINGLE_UNITS if parts == 1 else PART_UNITS * parts


def fit(head: str, tail: str, *, max_parts: int) -> str:
    """``head + tail`` when it fits in ``max_parts`` parts; else ``head`` cut (ending with …) so it does.

    The tail (publisher and reference) is always kept whole. Cutting a character never leaves half of it, and the
    result is never longer than the capacity, whatever the split of wide characters at part boundaries.
    """
    text = head + tail
    if len(segment(text)) <= max_parts:
        return text
    chars = list(head)
    budget = capacity(max_parts) - units(tail) - units(ELLIPSIS)
    while chars and units("".join(chars)) > budget:
        chars.pop()
    while chars:
        candidate = "".join(chars) + ELLIPSIS + tail
        if len(segment(candidate)) <= max_parts:
            return candidate
        chars.pop()
    candidate = ELLIPSIS + tail
    if len(segment(candidate)) > max_parts:
        raise ValueError(f"the fixed part of the text alone needs more than {max_parts} parts")
    return candidate


def concatenation_udh(reference: int, total: int, sequence: int) -> bytes:
    """The user data header of part ``sequence`` (from 1) of ``total``: 8-bit reference concatenation (IEI 0)."""
    if not 0 <= reference <= 0xFF:
        raise ValueError("the 8-bit concatenation reference is 0..255")
    if not 1 <= sequence <= total <= MAX_PARTS:
        raise ValueError(f"part {sequence} of {total} is not a valid concatenation")
    return bytes([0x05, 0x00, 0x03, reference, total, sequence])

"""UCS-2 segmentation: 70 units in one SMS, 67 per part of a concatenated one, wide characters never split."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.sms.segmentation import ELLIPSIS, PART_UNITS, SINGLE_UNITS, concatenation_udh, fit, segment, units

WIDE = "𬌗"  # U+2C317, a CJK Extension E character: two UTF-16 code units

texts = st.text(alphabet=st.sampled_from(["火", "情", "a", "，", WIDE, "😀", "镇"]), max_size=700)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", 0), ("火情", 2), (WIDE, 2), ("a" + WIDE + "b", 4), ("😀😀", 4)],
)
def test_units_count_wide_characters_twice(text: str, expected: int) -> None:
    """A character outside the BMP counts two UTF-16 code units, any other one."""
    assert units(text) == expected


@pytest.mark.parametrize(
    ("length", "parts"),
    [(0, 1), (1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4), (67 * 10, 10)],
)
def test_part_counts_at_the_boundaries(length: int, parts: int) -> None:
    """70 characters are one SMS; one more makes two parts of 67; every further 67 adds a part."""
    assert len(segment("火" * length)) == parts


def test_a_wide_character_at_a_boundary_moves_whole_to_the_next_part() -> None:
    """A wide character that would straddle the 67th unit starts the next part instead."""
    text = "火" * 66 + WIDE + "情" * 10
    parts = segment(text)
    assert parts[0] == "火" * 66
    assert parts[1].startswith(WIDE)


def test_a_wide_character_at_the_single_limit_forces_concatenation() -> None:
    """69 narrow characters and one wide one are 71 units: two parts, not one."""
    assert len(segment("火" * 69 + WIDE)) == 2


@given(texts)
def test_parts_join_back_to_the_text(text: str) -> None:
    """Joining the parts gives back the text exactly."""
    assert "".join(segment(text)) == text


@given(texts)
def test_parts_fit_their_limits(text: str) -> None:
    """A single part fits 70 units; each part of a concatenated message fits 67."""
    parts = segment(text)
    limit = SINGLE_UNITS if len(parts) == 1 else PART_UNITS
    assert all(units(part) <= limit for part in parts)


@given(texts)
def test_every_part_but_the_last_is_full(text: str) -> None:
    """Greedy: a part ends only when the next character would not fit, so no fewer parts are possible."""
    parts = segment(text)
    for part, following in itertools.pairwise(parts):
        assert units(part) + units(following[0]) > PART_UNITS


@given(st.text(alphabet=st.sampled_from(["火", WIDE, "a"]), max_size=600), st.integers(1, 5))
def test_fit_keeps_the_tail_and_the_part_limit(head: str, max_parts: int) -> None:
    """A fitted text keeps its tail whole, fits the parts allowed, and is the text itself or a cut ending in …."""
    tail = "（县林业局发布，编号YC-1·abcdef12）"
    text = fit(head, tail, max_parts=max_parts)
    assert text.endswith(tail)
    assert len(segment(text)) <= max_parts
    body = text[: -len(tail)]
    assert body == head or (body.endswith(ELLIPSIS) and head.startswith(body[:-1]))


def test_fit_refuses_a_tail_that_cannot_fit() -> None:
    """A tail longer than the allowed parts is an error, not a silently broken SMS."""
    with pytest.raises(ValueError, match="fixed part"):
        fit("火情", "编" * 80, max_parts=1)


@pytest.mark.parametrize(
    ("reference", "total", "sequence", "expected"),
    [(7, 2, 1, b"\x05\x00\x03\x07\x02\x01"), (255, 4, 4, b"\x05\x00\x03\xff\x04\x04")],
)
def test_concatenation_header_bytes(reference: int, total: int, sequence: int, expected: bytes) -> None:
    """The header is IEI 0 (8-bit reference concatenation): length 5, IEI, 3, reference, total, sequence."""
    assert concatenation_udh(reference, total, sequence) == expected


@pytest.mark.parametrize(("reference", "total", "sequence"), [(256, 2, 1), (1, 2, 3), (1, 2, 0)])
def test_concatenation_header_rejects_impossible_values(reference: int, total: int, sequence: int) -> None:
    """References beyond one octet and sequences outside 1..total are refused."""
    with pytest.raises(ValueError, match="concatenation"):
        concatenation_udh(reference, total, sequence)

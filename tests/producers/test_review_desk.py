"""The review desk's decisions obey the contract's text rules: a reason is put in NFC, and a reason (or reviewer) that
would break a reader downstream is refused with every problem named — before anything is published."""

from __future__ import annotations

from pathlib import Path

import pytest

from firebus.county import County
from firebus.errors import InvalidEventError
from firebus.records import Verdict
from firebus.settings import Settings
from producers import ReviewDesk
from tests.samples import review_item


@pytest.fixture(scope="module")
def desk(county: County, tmp_path_factory: pytest.TempPathFactory) -> ReviewDesk:
    """A desk that never contacts a broker: deciding is pure."""
    home: Path = tmp_path_factory.mktemp("desk")
    return ReviewDesk(settings=Settings(home=home, keys_dir=home), county=county)


def test_a_decomposed_reason_is_recorded_in_nfc(desk: ReviewDesk) -> None:
    """A reason typed with a combining accent is the same text, composed."""
    decision = desk.decision(review_item(), reviewer="hq-wang", verdict=Verdict.REJECT, reason="Cafe\u0301 内容不实")
    assert decision.reason == "Café 内容不实"


def test_a_hostile_reason_is_refused_naming_every_problem(desk: ReviewDesk) -> None:
    """Control and bidi characters and an over-long reason are refused with the field named."""
    with pytest.raises(InvalidEventError) as caught:
        desk.decision(review_item(), reviewer="hq-wang", verdict=Verdict.REJECT, reason="不实\x00\u202e" + "长" * 2000)
    assert [str(problem) for problem in caught.value.problems] == [
        "reason: control character U+0000 at index 2 (and 1 more forbidden)",
        "reason: 2004 characters, more than the limit of 2000",
    ]


def test_an_ordinary_reason_passes(desk: ReviewDesk) -> None:
    """Multi-line reasons with markup characters are fine."""
    reason = '核实情况：\n1. <现场> & "照片" 不一致'
    assert desk.decision(review_item(), reviewer="hq-wang", verdict=Verdict.REJECT, reason=reason).reason == reason

"""The county's time zone is one setting, ``[county] time_zone``: changing it changes every time firebus shows or
reads — the portal pages and feeds, SMS texts and quiet hours, statistics days and ``firebus stats --start``."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr

from consumers.analytics import Facts, compute, event_time
from consumers.portal.app import Portal, create_app
from consumers.sms import SmsSink, Texts
from firebus.county import County, load_county
from firebus.errors import ConfigurationError
from firebus.events import Audience
from firebus.settings import SAMPLE_CONFIG, Settings
from producers import ReviewDesk
from tests.asgi import asgi_request
from tests.consumers.sms.samples import fire_event, release_of
from tests.consumers.test_analytics import release

SHANGHAI = "Asia/Shanghai"
KOLKATA = "Asia/Kolkata"  # UTC+05:30: AT (10:02 UTC) is 18:02 in Shanghai and 15:32 in Kolkata


def config_in(zone: str | None, directory: Path) -> Path:
    """The sample county's config file with ``zone`` as its time zone (None: the line left out)."""
    sample = SAMPLE_CONFIG.read_text(encoding="utf-8")
    line = f'time_zone = "{SHANGHAI}"'
    assert line in sample
    path = directory / "county.toml"
    path.write_text(sample.replace(line, f'time_zone = "{zone}"' if zone else ""), encoding="utf-8")
    return path


@pytest.fixture
def county_in(tmp_path: Path) -> Callable[[str], County]:
    return lambda zone: load_county(config_in(zone, tmp_path))


def test_the_sample_county_states_its_zone_and_a_county_without_one_is_in_china_standard_time(tmp_path: Path) -> None:
    """Yangcheng's config says Asia/Shanghai; a config file that says nothing gets the same."""
    assert load_county(SAMPLE_CONFIG).zone == ZoneInfo(SHANGHAI)
    assert load_county(config_in(None, tmp_path)).zone == ZoneInfo(SHANGHAI)


def test_an_unknown_zone_is_a_one_line_configuration_error(tmp_path: Path) -> None:
    """A misspelt zone is refused at load, naming the file and the setting."""
    with pytest.raises(ConfigurationError, match=r"county\.toml: county\.time_zone: .*Asia/Shangai") as caught:
        load_county(config_in("Asia/Shangai", tmp_path))
    assert "\n" not in str(caught.value)


async def asgi_get(app: Any, path: str) -> str:
    """One GET through the portal's ASGI app; the response body as text."""
    response = await asgi_request(app, "GET", path)
    assert response.status == 200, response
    return response.body.decode()


@pytest.mark.parametrize(
    ("zone", "shown", "cap"),
    [
        (SHANGHAI, "2026-03-14 18:02", "2026-03-14T18:02:00+08:00"),
        (KOLKATA, "2026-03-14 15:32", "2026-03-14T15:32:00+05:30"),
    ],
)
async def test_the_portal_board_and_feeds_show_the_county_time(
    county_in: Callable[[str], County], zone: str, shown: str, cap: str
) -> None:
    """The public board, the CAP message and the Atom feed tell a fire's times in the configured zone."""
    county = county_in(zone)
    portal = Portal(settings=Settings(), county=county, desk=ReviewDesk(settings=Settings(), county=county))
    event = fire_event()
    assert portal.state.add_release(release_of(event, tier=Audience.PUBLIC))
    app = create_app(portal, follow_topics=False)
    board = await asgi_get(app, "/")
    assert f"{shown} · 县林业局发布" in board  # published at
    assert f"<dt>发现时间</dt><dd>{shown}</dd>" in board  # a time among the facts
    assert f"<sent>{cap}</sent>" in await asgi_get(app, f"/cap/{event.header.event_id}.xml")
    assert f"<published>{cap}</published>" in await asgi_get(app, "/feed.atom")


@pytest.mark.parametrize(("zone", "said"), [(SHANGHAI, "发现于3月14日18:02"), (KOLKATA, "发现于3月14日15:32")])
def test_sms_texts_tell_the_county_time(county_in: Callable[[str], County], zone: str, said: str) -> None:
    """An SMS names the time a fire was found in the configured zone."""
    event = fire_event()
    assert said in Texts(county=county_in(zone), max_parts=4).render(event, release_of(event))


@pytest.mark.parametrize(("zone", "quiet"), [(SHANGHAI, True), (KOLKATA, False)])
def test_the_sms_sinks_quiet_hours_are_county_time(county_in: Callable[[str], County], zone: str, quiet: bool) -> None:
    """22:00-07:00 quiet hours: 15:00 UTC is 23:00 in Shanghai (quiet) but 20:30 in Kolkata (not)."""
    sink = SmsSink(settings=Settings(sms_password=SecretStr("x")), county=county_in(zone))
    assert sink.quiet is not None
    assert sink.quiet.contains(datetime(2026, 3, 14, 15, 0, tzinfo=UTC)) is quiet


@pytest.mark.parametrize(
    ("zone", "day", "midnight"),
    [
        (SHANGHAI, "2026-03-12", datetime(2026, 3, 11, 16, 0, tzinfo=UTC)),
        (KOLKATA, "2026-03-11", datetime(2026, 3, 11, 18, 30, tzinfo=UTC)),
    ],
)
def test_statistics_days_and_window_bounds_are_county_time(
    county_in: Callable[[str], County], zone: str, day: str, midnight: datetime
) -> None:
    """17:00 UTC on 11 March is the 12th in Shanghai but still the 11th in Kolkata; a bare date starts at the
    county's midnight."""
    county = county_in(zone)
    stats = compute(
        Facts.of(releases=[release("a", occurred=datetime(2026, 3, 11, 17, 0, tzinfo=UTC))]), zone=county.zone
    )
    assert stats.counts_by_day.to_dict("records") == [{"day": day, "events": 1}]
    assert event_time("2026-03-12", county.zone) == midnight


def test_firebus_stats_reads_a_bare_start_in_the_county_zone(tmp_path: Path) -> None:
    """``firebus stats --start 2026-03-01`` means midnight where the county is, and the days table says which zone."""
    config = config_in(KOLKATA, tmp_path)
    files = tmp_path / "archive"
    files.mkdir()
    command = Path(sys.executable).parent / "firebus"
    arguments = [
        "--config",
        str(config),
        "stats",
        "--from",
        "files",
        "--files-dir",
        str(files),
        "--start",
        "2026-03-01",
    ]
    done = subprocess.run([str(command), *arguments], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "event time 2026-03-01T00:00:00+05:30 to now" in done.stdout
    assert "Events by day (Asia/Kolkata, event time)" in done.stdout


ZONE_OWNER = "firebus/county.py"
IANA_NAME = re.compile(r"^(Africa|America|Antarctica|Asia|Atlantic|Australia|Europe|Indian|Pacific|Etc)/\w+")


def zone_definitions(tree: ast.AST) -> list[str]:
    """Where code makes a time zone of its own: ``ZoneInfo(...)``, ``timezone(<offset>)``, an IANA name."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            called = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if called == "ZoneInfo" or (called == "timezone" and node.args):
                found.append(f"line {node.lineno}: {called}(...)")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and IANA_NAME.match(node.value):
            found.append(f"line {node.lineno}: {node.value!r}")
    return found


def test_only_the_county_defines_a_time_zone() -> None:
    """No code but the county's configuration makes a zone: everything else is handed the county's."""
    root = Path(__file__).resolve().parents[1]
    elsewhere = {
        path.relative_to(root).as_posix(): found
        for package in ("firebus", "consumers", "processors", "producers")
        for path in sorted((root / package).rglob("*.py"))
        if path.relative_to(root).as_posix() != ZONE_OWNER
        and (found := zone_definitions(ast.parse(path.read_text(encoding="utf-8"))))
    }
    assert elsewhere == {}
    assert zone_definitions(ast.parse((root / ZONE_OWNER).read_text(encoding="utf-8")))


@pytest.mark.parametrize(
    "snippet",
    ['ZONE = ZoneInfo("Asia/Shanghai")\n', "LOCAL = timezone(timedelta(hours=8))\n", 'DAY_ZONE = "Asia/Shanghai"\n'],
)
def test_the_zone_detector_sees_each_way_of_defining_a_zone(snippet: str) -> None:
    """The check above is not vacuous: the three ways the county's zone used to be defined are each seen."""
    assert zone_definitions(ast.parse(snippet))

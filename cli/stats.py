"""``firebus stats``: the analysts' statistics over the topics, the archive or its files: tables, CSV, PNG; and the
monthly report to the level above (``--month``, ``--report``: .xlsx and CSV)."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from cli.commands import Commands, say
from firebus.county import load_county
from firebus.errors import ConfigurationError
from firebus.settings import Settings


async def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.analytics import (  # pandas and matplotlib load only for this command
        compute,
        event_time,
        from_archive,
        from_files,
        from_topics,
        month_window,
        monthly_report,
        render_tables,
        within,
        write_charts,
        write_csv,
        write_report,
    )

    county = load_county(settings.config)
    zone = county.zone
    start: datetime | None
    end: datetime | None
    if args.report is not None and args.month is None:
        raise ConfigurationError("--report needs --month (the month to report, e.g. --month 2026-03)")
    if args.month is not None:
        if args.start is not None or args.end is not None:
            raise ConfigurationError("--month is a window of its own: give --month or --start/--end, not both")
        start, end = month_window(args.month, zone)
        # A fire first reported in the month is followed into the next (its later reports, its final area).
        read_end = None
    else:
        start, end = event_time(args.start, zone), event_time(args.end, zone)
        read_end = end
    if args.source == "archive":
        facts = await from_archive(settings, start=start, end=read_end)
    elif args.source == "files":
        facts = from_files(args.files_dir or settings.archive_directory, start=start, end=read_end)
    else:
        facts = await from_topics(settings, start=start, end=read_end)
    if args.report is not None:
        townships = {township.id: township.name for township in county.townships}
        report = monthly_report(
            facts.releases, county=county.county.name, month=args.month, zone=zone, townships=townships
        )
        written = write_report(report, args.report)
        say(f"{report.title}: wrote {len(written)} file(s) to {args.report}: " + ", ".join(p.name for p in written))
    facts = within(facts, start, end)
    statistics = compute(facts, zone=zone)
    window = f"{start.isoformat() if start else 'the beginning'} to {end.isoformat() if end else 'now'}"
    say(
        f"statistics from {args.source}, event time {window}: {len(facts.releases)} release(s), "
        f"{len(facts.audits)} audit record(s)"
    )
    say()
    say(render_tables(statistics))
    if args.out is not None:
        written = write_csv(statistics, args.out) + write_charts(statistics, args.out)
        say(f"wrote {len(written)} file(s) to {args.out}: " + ", ".join(path.name for path in written))
    return 0


def register(commands: Commands) -> None:
    stats = commands.command(
        "stats", cmd_stats, "statistics over the cleared and audit topics or the archive: tables, CSV, PNG"
    )
    stats.add_argument(
        "--from",
        dest="source",
        choices=("topics", "archive", "files"),
        default="topics",
        help="replay the topics (default), read the PostgreSQL archive, or the archive's Avro files",
    )
    stats.add_argument("--start", help="event-time window start, ISO (no zone: the county's)")
    stats.add_argument("--end", help="event-time window end, exclusive, ISO (no zone: the county's)")
    stats.add_argument("--month", metavar="YYYY-MM", help="the window of one calendar month (county time)")
    stats.add_argument(
        "--report",
        type=Path,
        metavar="DIR",
        help="write the monthly report to the level above (统计月报表) of --month here: .xlsx and CSV",
    )
    stats.add_argument("--out", type=Path, metavar="DIR", help="also write CSV files and PNG charts here")
    stats.add_argument("--files-dir", type=Path, metavar="DIR", help="archive files directory (default: archive_dir)")

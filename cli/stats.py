"""``firebus stats``: the analysts' statistics over the topics, the archive or its files: tables, CSV, PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.commands import Commands, say
from firebus.county import load_county
from firebus.settings import Settings


async def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.analytics import (  # pandas and matplotlib load only for this command
        compute,
        event_time,
        from_archive,
        from_files,
        from_topics,
        render_tables,
        write_charts,
        write_csv,
    )

    zone = load_county(settings.config).zone
    start, end = event_time(args.start, zone), event_time(args.end, zone)
    if args.source == "archive":
        facts = await from_archive(settings, start=start, end=end)
    elif args.source == "files":
        facts = from_files(args.files_dir or settings.archive_directory, start=start, end=end)
    else:
        facts = await from_topics(settings, start=start, end=end)
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
    stats.add_argument("--out", type=Path, metavar="DIR", help="also write CSV files and PNG charts here")
    stats.add_argument("--files-dir", type=Path, metavar="DIR", help="archive files directory (default: archive_dir)")

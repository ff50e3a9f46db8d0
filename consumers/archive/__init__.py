"""The archive: every cleared release and every audit event, exactly once by id, in two places.

* :class:`ArchiveSink` (sink ``archive``) — PostgreSQL, for querying: typed columns for statistics plus the full
  records as JSONB, under versioned :data:`MIGRATIONS`.
* :class:`AvroArchive` (sink ``archive-files``) — Avro object container files per topic per day, for cold storage;
  :func:`replay_files` re-publishes them to refill a lost cluster.

They are two sinks, so two consumer groups: PostgreSQL being down never holds up the files, and the reverse.
"""

from consumers._migrations import Migration
from consumers.archive._files import AvroArchive, archive_files, file_name, read_blocks
from consumers.archive._migrations import MIGRATIONS, apply_migrations
from consumers.archive._postgres import ArchiveSink, migrate_archive
from consumers.archive._replay import ARCHIVED_TOPICS, ReplayReport, archived_records, replay_files, replay_topics
from consumers.archive._rows import AuditRow, ReleaseRow, audit_row, release_row

__all__ = [
    "ARCHIVED_TOPICS",
    "MIGRATIONS",
    "ArchiveSink",
    "AuditRow",
    "AvroArchive",
    "Migration",
    "ReleaseRow",
    "ReplayReport",
    "apply_migrations",
    "archive_files",
    "archived_records",
    "audit_row",
    "file_name",
    "migrate_archive",
    "read_blocks",
    "release_row",
    "replay_files",
    "replay_topics",
]

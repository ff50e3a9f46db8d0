"""A PostgreSQL cluster of a test's own, on its own port, that the test stops and starts: a database outage.

The shared cluster on 5432 is never touched. Made with the distribution's cluster tools (postgresql-common:
``pg_createcluster``, ``pg_ctlcluster``, ``pg_dropcluster``, installed with PostgreSQL by tests/setup.d), trusting
local TCP connections like the shared one, and dropped with its data and log when the test is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

from firebus.broker import free_port

INSTALLED = Path("/usr/lib/postgresql")


async def _run(*command: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}): {output.decode(errors='replace')}")


@dataclass(frozen=True)
class OwnCluster:
    version: str
    name: str
    port: int

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    async def start(self) -> None:
        """Start it; returns once it accepts connections."""
        await _run("pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.name, "start")
        await _run("pg_isready", "-h", "127.0.0.1", "-p", str(self.port), "-t", "30")

    async def stop(self) -> None:
        """Stop it at once (``-m fast``: open connections are cut, as when a database server goes down)."""
        await _run("pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.name, "stop", "-m", "fast")


def newest_version() -> str:
    versions = sorted((path.name for path in INSTALLED.iterdir() if path.name.isdigit()), key=int)
    if not versions:
        raise RuntimeError(f"no PostgreSQL under {INSTALLED}; run `sh tests/setup.sh`")
    return versions[-1]


@asynccontextmanager
async def own_cluster(purpose: str) -> AsyncIterator[OwnCluster]:
    """A new, started cluster named ``firebus-<purpose>-<random>``, dropped (stopped first) on the way out."""
    cluster = OwnCluster(newest_version(), f"firebus-{purpose}-{uuid4().hex[:8]}", free_port())
    await _run(
        "pg_createcluster",
        cluster.version,
        cluster.name,
        "--port",
        str(cluster.port),
        "-o",
        "shared_buffers=16MB",
        "-o",
        "max_connections=20",
        "--",
        "--auth=trust",
    )
    try:
        await cluster.start()
        yield cluster
    finally:
        await _run("pg_dropcluster", cluster.version, cluster.name, "--stop")

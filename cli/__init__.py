"""The ``firebus`` command: the composition root, the only code that imports the rooms.

It builds each room's parts from the settings, hands them what they need of one another (the portal gets the
client library's review desk; the benchmarks get signed events) and decides which sinks run. One module per
command group; :func:`main` is the entry point (``firebus``, ``python -m cli``).
"""

from cli.main import build_parser, main

__all__ = ["build_parser", "main"]

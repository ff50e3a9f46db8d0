"""``python -m cli``: the ``firebus`` command (how ``firebus up`` and the tests start it as a child process)."""

import sys

from cli.main import main

sys.exit(main())

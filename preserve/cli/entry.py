"""The ``preserve`` console script: signals are handled before anything heavy is imported.

Loading the CLI takes a tenth of a second or more (click, then each command's modules). A Ctrl-C
or SIGTERM in that window would otherwise print a KeyboardInterrupt traceback or kill the process
by the signal. Until :func:`preserve.cli.main.main` puts its own handling in place, either signal
ends the run quietly with the interrupt exit code: nothing has been read or written yet.
"""

from __future__ import annotations

import os
import signal
from types import FrameType

#: The same value as preserve.errors.EXIT_INTERRUPTED, without importing anything to learn it.
_EXIT_INTERRUPTED = 130


def _early(signum: int, frame: FrameType | None) -> None:
    os._exit(_EXIT_INTERRUPTED)


def run() -> None:
    """Entry point of the console script."""
    signal.signal(signal.SIGINT, _early)
    signal.signal(signal.SIGTERM, _early)
    from preserve.cli.main import main

    main()

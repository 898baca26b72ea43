"""``python -m attncli``: the same entry point as the ``attncli`` console script.

A Ctrl-C while ``attncli.cli`` loads (a second or more on a busy machine) is one line and exit 130:
this stand-in handler, standard library only, holds until :mod:`attncli.io.interrupts` installs its own.
"""

import os
import signal
from types import FrameType


def _interrupted_at_start(signum: int, frame: FrameType | None) -> None:
    os.write(2, b"attncli: interrupted\n")
    os._exit(130)


_interrupted_at_start.attncli_start = True  # type: ignore[attr-defined]  # NOTE: interrupts replaces it
if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
    signal.signal(signal.SIGINT, _interrupted_at_start)

from attncli.cli import main  # noqa: E402

raise SystemExit(main())

"""The ``bale`` program's first step: a no-change rebuild is answered before bale loads.

``builder.rebuild`` imports only the standard library; when its record of
this exact command still matches the stat data of every input and output,
the recorded output is printed and the process ends. Anything else goes to
the full program (``builder.cli.main``).
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn


def run() -> NoReturn:
    argv = sys.argv[1:]
    if argv[:1] == ["build"] and "--no-cache" not in argv:
        from builder.rebuild import replay

        found = replay(argv, os.getcwd(), os.environ)
        if found is not None:
            sys.stderr.write(found[1])
            sys.stdout.write(found[0])
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
    from builder.cli.main import run as full

    full()


if __name__ == "__main__":
    run()

"""The ``bale`` program's entry point: signals first, then everything else.

Importing the builder takes a few hundred milliseconds; handlers installed
before that turn a Ctrl-C or SIGTERM at any moment into one line and exit
130 or 143, never a traceback. This module imports only what the
interpreter has already loaded, so its own import is instant.
"""

import os
import sys

from builder.cli import signals


def run() -> None:
    """``bale``: main() in a process that exits as soon as it is done (see ``main.run``)."""
    signals.install()
    try:
        from builder.cli.main import run as run_main

        run_main()
    except (KeyboardInterrupt, signals.Terminated) as exc:
        signals.ignore()
        line, code = signals.report(exc)
        try:
            sys.stderr.write(line)
            sys.stderr.flush()
        finally:
            os._exit(code)


if __name__ == "__main__":
    run()

"""Run the parent's main script once in the parse forkserver (imported there as a preload only).

A child forked from the forkserver runs the parent's ``__main__`` script again before it parses
(multiprocessing's main fixup), unless the forkserver has it already. CPython 3.11 means to do
that for a ``"__main__"`` preload but never passes the script's path (it asks for ``main_path``;
the preparation data calls it ``init_main_from_path``), so every child paid for the whole script:
about a second per artifact when the bot runs under a script that imports the package (a bench,
pytest, the simulation). The parent names the script in :data:`MAIN_ENV` while it starts the
forkserver; here it is imported the way multiprocessing would, and a child then skips it.
"""

from __future__ import annotations

import os
import sys
from multiprocessing import process, spawn

MAIN_ENV = "TRIAGEBOT_FORKSERVER_MAIN"

# "<parent pid>:<script>": only the forkserver that parent starts acts on it, not another Python
# process that parent happened to start while the variable was set.
_parent, _, _path = os.environ.pop(MAIN_ENV, "").partition(":")
if _path and _parent == str(os.getppid()) and "multiprocessing.forkserver" in sys.modules:
    process.current_process()._inheriting = True  # type: ignore[attr-defined]  # as the stdlib does
    try:
        spawn.import_main_path(_path)
    except Exception:  # a script that cannot be imported here: children run it, as before
        pass
    finally:
        del process.current_process()._inheriting  # type: ignore[attr-defined]

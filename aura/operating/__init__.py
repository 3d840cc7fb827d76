"""Operating aura: the ``aura`` CLI and what it reads and runs. Imports
``core``, ``governance`` and ``engine``.

- ``_cli``: the console script; ``_worker``: ``aura worker``.
- ``_inspect``: read-only views of a data directory; ``_doctor``: ``aura doctor``.
- ``_replay``: the replay debugger; ``_operate``: commands, ``aura run``, stats.
- ``_demo``: ``aura demo``; ``_progress``: progress bars.
"""

"""The CLI's progress line: shown on a terminal, silent otherwise."""

from __future__ import annotations

import io

from aura.operating._progress import Progress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_drawn_on_a_terminal_and_cleared() -> None:
    out = Tty()
    p = Progress("replaying m", 3, out)
    for _ in range(3):
        p.advance()
    assert "replaying m: 3/3 (100%)" in out.getvalue()
    p.close()
    assert out.getvalue().endswith("\r")


def test_progress_is_silent_when_not_a_terminal() -> None:
    out = io.StringIO()
    p = Progress("compacting", 10, out)
    p.advance(10)
    p.close()
    assert out.getvalue() == ""

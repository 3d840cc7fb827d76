"""Dynamic supervisors: OTP's ``simple_one_for_one`` and Elixir's
``DynamicSupervisor``.

No children at start; many started at run time, each from a full
:class:`ChildSpec` or from the supervisor's template with arguments
(``template(child_id, *args)`` returns the spec). The strategy is
``one_for_one``. As in OTP, a child that ends and is not restarted is
removed (no spec is kept), ``terminate_child`` removes it, and
``restart_child`` / ``delete_child`` do not apply. ``max_children`` bounds
how many it supervises at once (passivated children count: they are
alive to their callers).
"""

from __future__ import annotations

from collections.abc import Callable

from ._backoff import Backoff
from ._cell import ChildSpec
from ._errors import ActorError, ActorStartError, MaxChildrenError
from ._supervisor import AutoShutdown, Supervisor
from ._supervisor_calls import StartFromTemplate


class DynamicSupervisor(Supervisor):
    dynamic = True

    def __init__(
        self,
        template: Callable[..., ChildSpec] | None = None,
        *,
        max_children: int | None = None,
        max_restarts: int = 3,
        period: float = 5.0,
        backoff: Backoff | None = None,
        auto_shutdown: AutoShutdown = "never",
    ) -> None:
        super().__init__(
            strategy="one_for_one",
            max_restarts=max_restarts,
            period=period,
            backoff=backoff,
            auto_shutdown=auto_shutdown,
        )
        if max_children is not None and max_children < 0:
            raise ValueError("max_children must be >= 0")
        if template is not None and not callable(template):
            raise TypeError("template must be callable: template(child_id, *args) -> ChildSpec")
        self.template = template
        self.max_children = max_children

    def _check_room(self) -> None:
        if self.max_children is not None and len(self._cells) >= self.max_children:
            raise MaxChildrenError(self.actor_id, self.max_children)

    def _start_from_template(self, message: StartFromTemplate) -> ActorError | None:
        if self.template is None:
            return super()._start_from_template(message)
        try:
            spec = self.template(message.id, *message.args)
        except Exception as err:  # a bad argument: the caller's error, not ours
            return ActorStartError(message.id, err)
        if not isinstance(spec, ChildSpec) or spec.id != message.id:
            got = spec.id if isinstance(spec, ChildSpec) else type(spec).__name__
            return ActorStartError(
                message.id, TypeError(f"template returned {got!r}, not a ChildSpec with that id")
            )
        return self._call_start(spec, message.activate)

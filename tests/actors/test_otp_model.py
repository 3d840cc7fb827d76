"""A supervisor driven at random against a reference model of OTP's rules.

The model is written from the OTP ``supervisor`` manual and the code of
``supervisor.erl`` (``restart/2``, ``try_again_restart``, ``add_restart``,
``do_terminate``), not from aura's implementation. Children are threadless,
so a crash or a normal exit is reported to the (threaded) supervisor before
the test's next call reaches it: every step is deterministic. The clock is
injected; nothing sleeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from actors import (
    ActorNotFoundError,
    ActorStartError,
    ActorSystem,
    AlreadyPresentError,
    ChildRunningError,
    ChildSpec,
    DuplicateActorError,
    Supervisor,
)

from .helpers import Flaky, Recorder, capture_logger

RESTARTS = ("permanent", "transient", "temporary")
NAMES = tuple("abcdefg")


@dataclass
class Child:
    id: str
    restart: str
    status: str = "running"  # running | terminated | restarting
    restarts: int = 0


@dataclass
class OtpModel:
    """What OTP does, step by step: the children in start order, the
    intensity window, the events children see (start/stop/fail)."""

    strategy: str
    max_restarts: int
    period: float
    children: list[Child] = field(default_factory=list)
    window: list[float] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)
    fails: dict[str, int] = field(default_factory=dict)
    gave_up: bool = False

    def get(self, cid: str) -> Child | None:
        return next((c for c in self.children if c.id == cid), None)

    def start(self, child: Child) -> bool:
        if self.fails.get(child.id, 0) > 0:
            self.fails[child.id] -= 1
            self.events.append(("fail", child.id))
            return False
        self.events.append(("start", child.id))
        child.status = "running"
        return True

    def exit(self, cid: str, *, abnormal: bool, now: float) -> None:
        child = self.get(cid)
        assert child is not None and child.status == "running"
        if not abnormal:
            self.events.append(("stop", cid))  # stopped() runs on an orderly exit
        child.status = "terminated"
        if child.restart == "permanent" or (child.restart == "transient" and abnormal):
            self.restart(cid, now)
        elif child.restart == "temporary":
            self.children.remove(child)

    def restart(self, cid: str, now: float) -> None:
        # add_restart: keep restarts at or after now - period, give up past max.
        self.window = [t for t in self.window if t >= now - self.period]
        self.window.append(now)
        if len(self.window) > self.max_restarts:
            for c in reversed(self.children):
                if c.status == "running":
                    self.events.append(("stop", c.id))
            self.gave_up = True
            return
        ids = [c.id for c in self.children]
        if self.strategy == "one_for_one":
            group = [cid]
        elif self.strategy == "one_for_all":
            group = ids
        else:
            group = ids[ids.index(cid) :]
        members = [c for c in self.children if c.id in group]
        for c in reversed(members):
            if c.id == cid:
                continue
            if c.status == "running":
                self.events.append(("stop", c.id))
            if c.restart == "temporary":
                self.children.remove(c)  # never restarted: removed
        members = [c for c in members if c in self.children]
        for c in members:
            c.status = "restarting"
        for c in members:
            if not self.start(c):
                c.status = "terminated"
                self.restart(c.id, now)  # try_again_restart: the group again, counted
                return
            c.restarts += 1


class SupervisorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.system: ActorSystem | None = None

    @initialize(
        strategy=st.sampled_from(["one_for_one", "one_for_all", "rest_for_one"]),
        max_restarts=st.sampled_from([1, 2, 3, 0]),
        period=st.sampled_from([5.0, 10.0]),
        initial=st.lists(st.sampled_from(RESTARTS), min_size=1, max_size=4),
    )
    def setup(self, strategy: str, max_restarts: int, period: float, initial: list[str]) -> None:
        self.now = [0.0]
        self.rec = Recorder()
        self.log = Recorder()
        self.fails: dict[str, int] = {}
        self.model = OtpModel(strategy, max_restarts, period, fails=self.fails.copy())
        self.system = ActorSystem(
            "otp-model", clock=lambda: self.now[0], logger=capture_logger(self.log)
        )
        specs = [self.spec(NAMES[i], r) for i, r in enumerate(initial)]
        self.model.children = [Child(s.id, s.restart) for s in specs]
        self.system.spawn(
            ChildSpec(
                "sup",
                lambda: Supervisor(
                    specs,
                    strategy=strategy,  # type: ignore[arg-type]
                    max_restarts=max_restarts,
                    period=period,
                ),
                restart="temporary",
                shutdown="infinity",
            )
        )
        self.model.events = [("start", s.id) for s in specs]

    def spec(self, name: str, restart: str) -> ChildSpec:
        rec, fails = self.rec, self.fails
        return ChildSpec(
            name,
            lambda: Flaky(name, rec, fails),
            restart=restart,  # type: ignore[arg-type]
            threaded=False,
            shutdown="infinity",
        )

    def teardown(self) -> None:
        if self.system is not None:
            self.system.shutdown()

    # ------------------------------------------------------------ helpers

    def running(self) -> list[str]:
        return [c.id for c in self.model.children if c.status == "running"]

    def terminated(self) -> list[str]:
        return [c.id for c in self.model.children if c.status == "terminated"]

    def arm(self, name: str, failures: int) -> None:
        self.fails[name] = failures
        self.model.fails[name] = failures

    def settle(self) -> None:
        """After the supervisor gave up, wait for its report (not a sleep)."""
        self.log.wait_for(lambda ev: any(e["event"] == "supervisor.gave_up" for e in ev))

    # ------------------------------------------------------------ rules

    @precondition(lambda self: not self.model.gave_up and self.running())
    @rule(data=st.data(), abnormal=st.booleans(), failures=st.integers(0, 2))
    def child_exits(self, data: st.DataObject, abnormal: bool, failures: int) -> None:
        assert self.system is not None
        cid = data.draw(st.sampled_from(self.running()))
        if failures:
            target = data.draw(st.sampled_from([c.id for c in self.model.children]))
            self.arm(target, failures)
        self.model.exit(cid, abnormal=abnormal, now=self.now[0])
        self.system.tell(cid, "crash" if abnormal else "exit")
        event(f"restarts in window: {len(self.model.window)}")
        if self.model.gave_up:
            event(f"gave up ({self.model.strategy})")
            self.settle()

    @rule(step=st.sampled_from([0.5, 1.0, "period"]))
    def advance_clock(self, step: float | str) -> None:
        self.now[0] += self.model.period if step == "period" else step  # type: ignore[operator]

    @precondition(lambda self: not self.model.gave_up)
    @rule(name=st.sampled_from(NAMES), restart=st.sampled_from(RESTARTS), fail=st.booleans())
    def start_child(self, name: str, restart: str, fail: bool) -> None:
        assert self.system is not None
        existing = self.model.get(name)
        if fail:
            self.arm(name, 1)
        if existing is not None:
            expected: type[Exception] = (
                AlreadyPresentError if existing.status == "terminated" else DuplicateActorError
            )
            with pytest.raises(expected):
                self.system.start_child("sup", self.spec(name, restart))
            return
        child = Child(name, restart)
        if self.model.fails.get(name, 0) > 0:
            with pytest.raises(ActorStartError):
                self.system.start_child("sup", self.spec(name, restart))
            self.model.start(child)  # records the failure; the id stays free
            return
        self.system.start_child("sup", self.spec(name, restart))
        self.model.children.append(child)
        self.model.start(child)

    @precondition(lambda self: not self.model.gave_up)
    @rule(name=st.sampled_from(NAMES))
    def terminate_child(self, name: str) -> None:
        assert self.system is not None
        child = self.model.get(name)
        if child is None:
            with pytest.raises(ActorNotFoundError):
                self.system.terminate_child("sup", name)
            return
        self.system.terminate_child("sup", name)
        if child.status == "running":
            self.model.events.append(("stop", name))
        child.status = "terminated"
        if child.restart == "temporary":
            self.model.children.remove(child)

    @precondition(lambda self: not self.model.gave_up)
    @rule(name=st.sampled_from(NAMES), fail=st.booleans())
    def restart_child(self, name: str, fail: bool) -> None:
        assert self.system is not None
        child = self.model.get(name)
        if child is None:
            with pytest.raises(ActorNotFoundError):
                self.system.restart_child("sup", name)
        elif child.status != "terminated":
            with pytest.raises(ChildRunningError):
                self.system.restart_child("sup", name)
        else:
            if fail:
                self.arm(name, 1)
            if self.model.fails.get(name, 0) > 0:
                with pytest.raises(ActorStartError):
                    self.system.restart_child("sup", name)
                self.model.start(child)  # records the failure; it stays terminated
                child.status = "terminated"
            else:
                self.system.restart_child("sup", name)
                self.model.start(child)

    @precondition(lambda self: not self.model.gave_up)
    @rule(name=st.sampled_from(NAMES))
    def delete_child(self, name: str) -> None:
        assert self.system is not None
        child = self.model.get(name)
        if child is None:
            with pytest.raises(ActorNotFoundError):
                self.system.delete_child("sup", name)
        elif child.status != "terminated":
            with pytest.raises(ChildRunningError):
                self.system.delete_child("sup", name)
        else:
            self.system.delete_child("sup", name)
            self.model.children.remove(child)

    # ------------------------------------------------------------ checks

    @invariant()
    def matches_the_model(self) -> None:
        if self.system is None:
            return
        gave_up = any(e["event"] == "supervisor.gave_up" for e in self.log.events)
        assert gave_up == self.model.gave_up
        if self.model.gave_up:
            assert self.rec.events == self.model.events
            return
        infos = self.system.which_children("sup")
        seen = [(i.id, i.status, i.restart, i.restarts) for i in infos]
        expected = [(c.id, c.status, c.restart, c.restarts) for c in self.model.children]
        assert seen == expected
        counts = self.system.count_children("sup")
        assert counts.specs == len(expected)
        assert counts.active == len(self.running())
        window = [t for t in self.model.window if t >= self.now[0] - self.model.period]
        assert counts.restarts_in_window == len(window)
        assert self.rec.events == self.model.events


TestSupervisorAgainstOtp = SupervisorMachine.TestCase
TestSupervisorAgainstOtp.settings = settings(
    max_examples=200,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_the_model_itself_follows_the_manual() -> None:
    """The reference model on the manual's own examples (a check of the checker)."""
    m = OtpModel("rest_for_one", max_restarts=2, period=5)
    m.children = [Child("a", "permanent"), Child("b", "temporary"), Child("c", "transient")]
    m.exit("a", abnormal=True, now=0)  # b (temporary) removed, c restarted with a
    assert [(c.id, c.status) for c in m.children] == [("a", "running"), ("c", "running")]
    assert m.events == [("stop", "c"), ("stop", "b"), ("start", "a"), ("start", "c")]
    m.exit("c", abnormal=False, now=5)  # transient, normal: terminated, no restart
    assert m.get("c") is not None and m.get("c").status == "terminated"  # type: ignore[union-attr]
    m.exit("a", abnormal=False, now=5)  # permanent, normal: restarted; window {0, 5}
    assert not m.gave_up and m.window == [0, 5]
    # start_children starts the whole group: the terminated c comes back with a.
    assert m.events[-2:] == [("start", "a"), ("start", "c")]
    m.exit("a", abnormal=True, now=5)  # third restart within [0, 5]: give up
    assert m.gave_up
    assert m.events[-1] == ("stop", "c")  # giving up stops the running children

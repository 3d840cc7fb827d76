"""rt.start(tags=...): journaled with the start, kept by every later run and
transition, filtered by rt.missions(tags=), aura ls --tag and the console."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import aura
from aura.engine._place import Place
from aura.operating.console._source import BadRequest, ConsoleSource

from . import missions as m
from .test_cli import aura_cli

ACME = {"customer": "acme", "tier": "gold"}


def test_tags_are_kept_and_filtered_across_runs_and_restarts(tmp_path: Path) -> None:
    with aura.Runtime(tmp_path, missions=[m.arithmetic, m.looper]) as rt:
        rt.start(m.arithmetic, 2, mission_id="a", tags=ACME).result(timeout=30)
        rt.start(m.arithmetic, 3, mission_id="b", tags={"customer": "other"}).result(timeout=30)
        rt.start(m.looper, 0, 60, mission_id="l", tags=ACME).result(timeout=60)  # several runs
        rt.start(m.arithmetic, 1, mission_id="plain").result(timeout=30)
        assert rt.get("a").tags == ACME
        assert rt.get("l").run > 1 and rt.get("l").tags == ACME
        assert sorted(v.mission_id for v in rt.missions(tags={"customer": "acme"})) == ["a", "l"]
        assert [v.mission_id for v in rt.missions(tags={"customer": "other"})] == ["b"]
        assert rt.missions(tags={"customer": "acme", "tier": "silver"}) == []
    with aura.Runtime(tmp_path, missions=[m.arithmetic, m.looper]) as rt:  # read back
        assert rt.get("a").tags == ACME and rt.get("l").tags == ACME
        assert rt.get("plain").tags == {}

    listed = aura_cli("--data", str(tmp_path), "ls", "--tag", "customer=acme", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(r["mission_id"] for r in rows) == ["a", "l"]
    assert all(r["tags"] == ACME for r in rows)
    human = aura_cli("--data", str(tmp_path), "ls", "--tag", "tier=gold")
    assert "[customer=acme, tier=gold]" in human.stdout and " b " not in human.stdout
    bad = aura_cli("--data", str(tmp_path), "ls", "--tag", "nonsense")
    assert bad.returncode == 1 and "NAME=VALUE" in bad.stderr

    source = ConsoleSource(Place.of(tmp_path), read_only=True)
    try:
        found = source.missions(tag="customer=acme")
        assert sorted(r["mission_id"] for r in found["missions"]) == ["a", "l"]
        assert found["missions"][0]["tags"] == ACME
        with pytest.raises(BadRequest, match="NAME=VALUE"):
            source.missions(tag="acme")
    finally:
        source.close()


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        ("acme", "must be a dict"),
        ({"": "x"}, "1-64 characters"),
        ({"a=b": "x"}, "without '='"),
        ({"k": 1}, "must be a str"),
        ({"k": "x" * 257}, "at most 256"),
        ({f"k{i}": "v" for i in range(33)}, "at most 32"),
    ],
)
def test_bad_tags_are_refused_before_anything_is_journaled(
    tmp_path: Path, tags: object, message: str
) -> None:
    with aura.Runtime(tmp_path, missions=[m.arithmetic]) as rt:
        with pytest.raises(aura.AuraError, match=message):
            rt.start(m.arithmetic, 1, mission_id="x", tags=tags)  # type: ignore[arg-type]
        assert rt.store.version("mission/x") == 0

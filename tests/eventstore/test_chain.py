"""Hash-chained streams: every single-entry tampering is found, at the right
entry; concurrent appenders (group commit) still build one valid chain."""

from __future__ import annotations

import threading
from pathlib import Path

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from eventstore import EventStore, MemoryEventStore, NewEvent, RecordedEvent, verify_chain


def chain(payloads: list[bytes]) -> list[RecordedEvent]:
    store = MemoryEventStore(chained=("audit",))
    for p in payloads:
        store.append("audit", [NewEvent("entry", p)])
        store.append("noise", [NewEvent("other", p)])  # positions interleave
    return list(store.read("audit"))


payloads = st.lists(st.binary(max_size=16), min_size=2, max_size=30)


@settings(max_examples=300, deadline=None)
@given(payloads, st.data())
def test_an_edit_is_found_at_the_edited_entry(ps: list[bytes], data: st.DataObject) -> None:
    events = chain(ps)
    k = data.draw(st.integers(0, len(events) - 1))
    field = data.draw(st.sampled_from(["data", "kind", "ts", "position"]))
    old = events[k]
    new_value: object = {
        "data": old.data + b"!",
        "kind": old.kind + "!",
        "ts": old.ts + 1.0,
        "position": old.position + 1 if k == len(events) - 1 else old.position,
    }[field]
    if new_value == getattr(old, field):
        new_value = old.ts + 2.0 if field == "position" else new_value
        field = "ts" if field == "position" else field
    events[k] = msgspec.structs.replace(old, **{field: new_value})
    report = verify_chain(events)
    assert not report.ok
    assert report.bad_version == k + 1
    assert report.count == k


@settings(max_examples=300, deadline=None)
@given(payloads, st.data())
def test_a_deletion_is_found_where_the_entry_is_missing(
    ps: list[bytes], data: st.DataObject
) -> None:
    events = chain(ps)
    k = data.draw(st.integers(0, len(events) - 2))  # not the head: nothing to notice then
    del events[k]
    report = verify_chain(events)
    assert not report.ok and report.bad_version == k + 1


@settings(max_examples=300, deadline=None)
@given(payloads, st.data())
def test_a_swap_is_found_at_the_first_swapped_entry(ps: list[bytes], data: st.DataObject) -> None:
    events = chain(ps)
    k = data.draw(st.integers(0, len(events) - 2))
    events[k], events[k + 1] = events[k + 1], events[k]
    report = verify_chain(events)
    assert not report.ok and report.bad_version == k + 1


@settings(max_examples=300, deadline=None)
@given(payloads, st.data(), st.binary(max_size=16))
def test_an_insertion_is_found_at_the_inserted_entry(
    ps: list[bytes], data: st.DataObject, forged: bytes
) -> None:
    events = chain(ps)
    k = data.draw(st.integers(0, len(events) - 1))
    # A forger renumbers everything after the insertion and recomputes nothing.
    fake = msgspec.structs.replace(events[k], data=events[k].data + b"*" + forged)
    rest = [msgspec.structs.replace(e, version=e.version + 1) for e in events[k:]]
    report = verify_chain([*events[:k], fake, *rest])
    assert not report.ok and report.bad_version == k + 1


def test_a_clean_chain_reports_count_and_head() -> None:
    events = chain([b"a", b"b", b"c"])
    report = verify_chain(events)
    assert report.ok and report.count == 3 and report.head == events[-1].digest.hex()
    assert verify_chain([]).ok


def test_group_committed_appends_from_many_threads_form_one_chain(tmp_path: Path) -> None:
    with EventStore.open(tmp_path / "log", chained=("audit",)) as store:
        barrier = threading.Barrier(16)

        def writer(t: int) -> None:
            barrier.wait()
            for i in range(40):
                store.append_many(
                    [
                        (f"s{t}", [NewEvent("e")], None),
                        ("audit", [NewEvent("a", bytes([t, i]))], None),
                    ]
                )

        threads = [threading.Thread(target=writer, args=(t,)) for t in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        events = list(store.read("audit"))
        assert len(events) == 640
        assert verify_chain(events).ok

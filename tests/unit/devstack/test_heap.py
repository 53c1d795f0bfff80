"""devstack.heap: survivors are frozen out of the collector's reach, and given back at stop."""

from __future__ import annotations

import gc

from devstack.heap import HeapFreezer
from devstack.stack import DevStack, StackConfig
from devstack.waiting import wait_until


class _Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector can free it


def test_objects_made_before_a_freeze_are_out_of_reach_and_come_back_at_stop() -> None:
    freezer = HeapFreezer(every_seconds=0.05)
    kept = [_Node() for _ in range(100)]
    try:
        freezer.start()
        assert gc.get_freeze_count() >= len(kept)
        # WHEN objects are made after the first freeze THEN a later run freezes them too
        later = [_Node() for _ in range(1000)]
        frozen = gc.get_freeze_count()
        wait_until(lambda: gc.get_freeze_count() >= frozen + len(later), timeout=5)
    finally:
        freezer.stop()
    assert gc.get_freeze_count() == 0


def test_garbage_made_between_freezes_is_collected_not_frozen() -> None:
    freezer = HeapFreezer(every_seconds=3600)  # only the freeze at start
    try:
        freezer.start()
        before = gc.get_freeze_count()
        for _ in range(1000):
            _Node()  # dead cycles: the next collection frees them
        freezer._freeze()
        assert gc.get_freeze_count() - before < 1000
    finally:
        freezer.stop()


def test_the_heap_is_frozen_with_worker_processes_and_not_for_an_inline_stack() -> None:
    assert DevStack(StackConfig(runtime="process")).heap is not None
    assert DevStack(StackConfig(runtime="inline")).heap is None
    assert DevStack(StackConfig(runtime="inline", freeze_heap=True)).heap is not None

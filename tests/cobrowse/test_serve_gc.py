"""`cobrowse serve` tunes the garbage collector once started (see docs/BENCHMARKS.md, Events)."""

from __future__ import annotations

import gc

from cobrowse import cmd_serve


def test_tune_gc_freezes_start_up_objects_and_raises_the_young_threshold() -> None:
    before = gc.get_threshold()
    try:
        cmd_serve.tune_gc()
        assert gc.get_threshold()[0] == cmd_serve.GC_GEN0_THRESHOLD > before[0]
        assert gc.get_threshold()[1:] == before[1:]
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)

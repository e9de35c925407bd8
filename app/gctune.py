"""Python's garbage collector as Paidan's long-running processes use it: every process started
from wsgi.py (gunicorn workers, `flask serve`, the timer workers of `flask worker`)."""

from __future__ import annotations

import gc

# Young objects are collected every this many allocations (Python's default: 700).
GC_THRESHOLD = 20_000


def tune_gc() -> None:
    """Collect the youngest objects less often, and never look again at those made so far.

    A request or a timer firing makes thousands of short-lived objects that point at each
    other (ORM rows and their session, SpiffWorkflow tasks and their workflow, a dispatch
    ranking). With Python's default thresholds that meant a full collection every ~1,200
    timer firings, walking every object of the process for ~0.2 s, and a collection of the
    middle generation every few dispatch decisions (the slowest of them: 27.5 ms at p99
    against 15.8 ms at p50, bench/dispatch.py); frozen, the app, the modules, the restored
    process specs and the dispatch roster are never walked again, and the young objects are
    collected every 20,000 allocations (a few MB) instead of 700. Called once a process has
    started; calling it again does nothing.
    """
    if gc.get_threshold()[0] < GC_THRESHOLD:
        gc.collect()
        gc.freeze()
        gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])

"""Ctrl-C during training stops between iterations, not inside a handler.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be when SIGINT arrives:
possibly inside a handler (a validation half-recorded, TensorBoard's event-writer queue holding
its lock, a checkpoint being renamed into place). :func:`interrupt_between_iterations` defers
the first Ctrl-C: the engine finishes the iteration it is in (and any validation, checkpoint or
logging handler running at that moment), then raises ``KeyboardInterrupt`` from an
``ITERATION_STARTED`` / ``ITERATION_COMPLETED`` boundary, where no handler holds anything (or
when the engine returns, if the signal came after its last iteration). A second Ctrl-C raises at
once, as usual.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

from ignite.engine import Engine, Events

__all__ = ["interrupt_between_iterations"]


@contextlib.contextmanager
def interrupt_between_iterations(engine: Engine) -> Iterator[None]:
    """While the block runs, a first SIGINT is raised as ``KeyboardInterrupt`` at ``engine``'s
    next iteration boundary; a second one at once. The block runs unchanged outside the main
    thread (where Python cannot install signal handlers) and where SIGINT is ignored (``nohup``,
    a background job: ignored it stays). The previous SIGINT handler is restored."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield
        return
    pending = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal pending
        if pending:  # the second Ctrl-C: the user does not want to wait
            raise KeyboardInterrupt
        pending = True

    def at_boundary(_: Engine) -> None:
        if pending:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_signal)
    events = (Events.ITERATION_STARTED, Events.ITERATION_COMPLETED)
    for event in events:
        engine.add_event_handler(event, at_boundary)
    try:
        yield
        if pending:  # arrived after the last iteration: still an interruption
            raise KeyboardInterrupt
    finally:
        signal.signal(signal.SIGINT, previous)
        for event in events:
            engine.remove_event_handler(at_boundary, event)

"""Ctrl-C during training is raised between iterations (engines/interrupt.py)."""

from __future__ import annotations

import os
import signal

import pytest
from ignite.engine import Engine

from mama_monai.engines.interrupt import interrupt_between_iterations


@pytest.fixture(autouse=True)
def ctrl_c_raises():
    """Python's default SIGINT handler, whatever the test process inherited (a background job or
    ``nohup`` starts with SIGINT ignored)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _engine(log: list, kills_at: int, kills: int = 1) -> Engine:
    """Iterations that log their start and end; iteration ``kills_at`` sends itself SIGINT
    ``kills`` times in the middle (as Ctrl-C would arrive inside a handler's critical section)."""

    def step(engine, batch):
        log.append(("start", engine.state.iteration))
        if engine.state.iteration == kills_at:
            for _ in range(kills):
                os.kill(os.getpid(), signal.SIGINT)  # the Python handler runs right after this call
        log.append(("end", engine.state.iteration))

    return Engine(step)


def test_the_first_ctrl_c_finishes_the_iteration_and_stops_before_the_next():
    log: list = []
    engine = _engine(log, kills_at=3)
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with interrupt_between_iterations(engine):
            engine.run(range(10), max_epochs=1)
    assert log[-2:] == [("start", 3), ("end", 3)]  # iteration 3 completed, iteration 4 never started
    assert signal.getsignal(signal.SIGINT) is before
    # the boundary check is gone from the engine (its flag, still set, would stop a new run at once)
    log.clear()
    engine.state.max_epochs = None  # ignite: start afresh instead of resuming the interrupted run
    engine.run(range(2), max_epochs=1)
    assert log == [("start", 1), ("end", 1), ("start", 2), ("end", 2)]


def test_a_second_ctrl_c_raises_at_once():
    log: list = []
    engine = _engine(log, kills_at=2, kills=2)
    with pytest.raises(KeyboardInterrupt):
        with interrupt_between_iterations(engine):
            engine.run(range(10), max_epochs=1)
    assert log[-1] == ("start", 2)  # interrupted inside the iteration


def test_a_ctrl_c_after_the_last_iteration_still_interrupts():
    log: list = []
    engine = _engine(log, kills_at=4)  # the last of four
    with pytest.raises(KeyboardInterrupt):
        with interrupt_between_iterations(engine):
            engine.run(range(4), max_epochs=1)
    assert log[-1] == ("end", 4)


def test_without_the_guard_ctrl_c_lands_inside_the_iteration():
    # the reference the guard is measured against: Python's default raises mid-iteration
    log: list = []
    engine = _engine(log, kills_at=3)
    with pytest.raises(KeyboardInterrupt):
        engine.run(range(10), max_epochs=1)
    assert log[-1] == ("start", 3)


def test_an_ignored_sigint_stays_ignored():
    # under nohup or in a background job SIGINT is ignored: the guard must not turn it back on
    log: list = []
    engine = _engine(log, kills_at=2)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with interrupt_between_iterations(engine):
        engine.run(range(4), max_epochs=1)
    assert log[-1] == ("end", 4)
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN

"""Ctrl-C / TERM in a headless run: the handler asks to stop without taking any lock on the thread it interrupts.

A Python signal handler runs on the main thread between two bytecodes of
whatever it was doing, possibly while that thread holds the journal's or the
console's lock. A handler that published "stopping" itself deadlocked there:
a headless run then never ended after Ctrl-C (seen in CI as a 120 s timeout).
"""
from __future__ import annotations

import signal
import threading
import time

import pytest

from nas3d_tui.commands.run import stop_on_signals


class LockedStop:
    """A control whose stop needs a lock that the interrupted (main) thread holds until ``release``."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.ran_on_main: list[bool] = []
        self.done = threading.Event()

    def stop(self) -> None:
        self.ran_on_main.append(threading.current_thread() is threading.main_thread())
        self.release.wait(10)
        self.done.set()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_first_signal_returns_at_once_and_stops_off_the_interrupted_thread(signum):
    control = LockedStop()
    with stop_on_signals(control):
        t0 = time.monotonic()
        signal.raise_signal(signum)  # the handler runs here, on this (main) thread
        returned_after = time.monotonic() - t0
        control.release.set()  # the main thread "lets go of its lock"
        assert control.done.wait(10)
    assert returned_after < 2.0, f"the handler blocked the interrupted thread for {returned_after:.1f} s"
    assert control.ran_on_main == [False]


def test_a_second_signal_leaves_at_once_and_the_old_handlers_come_back():
    control = LockedStop()
    control.release.set()
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with stop_on_signals(control):
            signal.raise_signal(signal.SIGINT)
            assert control.done.wait(10)
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
    assert control.ran_on_main == [False]

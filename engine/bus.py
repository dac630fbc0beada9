"""The thread-safe bus that carries a run's events (``engine.events``) to its watchers.

It must not import torch or any UI library.
"""
from __future__ import annotations

import threading
from typing import Callable

from .events import Event

__all__ = ["Subscriber", "EventBus"]

Subscriber = Callable[[Event], None]


class EventBus:
    """Thread-safe publish/subscribe. A subscriber that raises is reported, not propagated."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._subscribers: list[Subscriber] = []
        self.errors: list[str] = []

    def subscribe(self, fn: Subscriber) -> Subscriber:
        with self._lock:
            self._subscribers.append(fn)
        return fn

    def unsubscribe(self, fn: Subscriber) -> None:
        with self._lock:
            if fn in self._subscribers:
                self._subscribers.remove(fn)

    def publish(self, event: Event) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for fn in subscribers:
            try:
                fn(event)
            except Exception as exc:  # a broken watcher must never stop the search
                with self._lock:
                    self.errors.append(f"{getattr(fn, '__name__', fn)!s}: {exc!r}")

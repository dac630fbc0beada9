"""Executors: where and how concurrently candidates are trained.

The session decides what is trained and records results; an executor only
trains the jobs it is given and reports through ``Callbacks`` on the
session's thread. Modules: ``base`` (``Job``, ``TrainSpec``, ``Callbacks``,
the ``Evaluator`` protocol, ``candidate_seed``), ``tasks`` (the retry rules,
placement and stop-with-grace every concurrent backend shares), ``plan``
(worker plans), ``packing`` (the search subset for other processes),
``pump`` (the message pump and pause report the pool and Ray share),
``sequential``, ``threads`` (one CUDA stream per candidate), ``pool`` (worker
processes), ``ray`` (Ray tasks) and ``factory`` (which one a profile asks for).
Every executor takes the session's gate as a protocol (``engine.control``:
``Gate`` or ``SessionGate``), never ``Control`` itself.

Nothing here imports the session, the run directory or the events.
"""
from __future__ import annotations

from .base import Callbacks, Evaluator, Job, TrainSpec, candidate_seed
from .factory import check_executor, concurrency_of, make_evaluator
from .plan import WorkerSlot, available_cores, plan_workers

__all__ = [
    "Callbacks",
    "Evaluator",
    "Job",
    "TrainSpec",
    "WorkerSlot",
    "candidate_seed",
    "check_executor",
    "concurrency_of",
    "make_evaluator",
    "plan_workers",
    "available_cores",
]

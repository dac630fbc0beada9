"""Classification metrics exactly as ``medmnist.Evaluator`` computes them.

This module owns ACC and AUC for the MedMNIST3D tasks (``binary-class`` and
``multi-class``); it mirrors ``medmnist.evaluator.getACC`` / ``getAUC`` so the
numbers the dashboard shows are the numbers the paper reports:

- binary-class: the score of class 1 (the last column of a two-column score
  matrix, or a 1-D score vector) is used. ACC thresholds it at 0.5 (for
  softmax scores this is the argmax); AUC is its ROC AUC.
- multi-class: ACC is the argmax accuracy; AUC is the unweighted mean of the
  one-vs-rest ROC AUC of every class column.

A split in which a class is missing makes that ROC AUC undefined. Like medmnist
(on the installed scikit-learn, which warns and returns nan) the AUC is then
``nan`` -- for multi-class the mean of the per-class AUCs, so one undefined
class makes it ``nan`` too. The warning is silenced here; callers decide how to
show a ``nan``.

It must not import torch: scores arrive as numpy arrays (one host copy per
epoch, made by the trainer).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped,unused-ignore]

__all__ = ["accuracy", "auc", "TASKS"]

TASKS = ("binary-class", "multi-class")


def _prepare(y_true: np.ndarray, scores: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray]:
    if task not in TASKS:
        raise ValueError(f"unsupported task {task!r}: expected one of {', '.join(TASKS)}")
    y = np.asarray(y_true).reshape(-1)
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 2 and s.shape[1] == 1:
        s = s[:, 0]
    if s.shape[0] != y.shape[0]:
        raise ValueError(f"{y.shape[0]} labels but {s.shape[0]} score rows")
    if task == "multi-class" and s.ndim != 2:
        raise ValueError("multi-class scores must be an (n_samples, n_classes) matrix")
    if task == "binary-class" and s.ndim == 2:
        s = s[:, -1]
    return y, s


def accuracy(y_true: np.ndarray, scores: np.ndarray, task: str = "multi-class") -> float:
    """Accuracy as ``medmnist.evaluator.getACC``.

    Args:
        y_true: integer labels, shape ``(n,)`` or ``(n, 1)``.
        scores: class scores ``(n, n_classes)`` (for binary tasks also ``(n,)``,
            the class-1 score).
        task: ``"binary-class"`` (class-1 score > 0.5) or ``"multi-class"``
            (argmax).

    Returns:
        The fraction of correct predictions (``nan`` for an empty split).

    Raises:
        ValueError: unknown task or mismatched shapes.
    """
    y, s = _prepare(y_true, scores, task)
    if y.size == 0:
        return math.nan
    pred = (s > 0.5).astype(y.dtype) if task == "binary-class" else np.argmax(s, axis=-1)
    return float(np.mean(pred == y))


def auc(y_true: np.ndarray, scores: np.ndarray, task: str = "multi-class") -> float:
    """ROC AUC as ``medmnist.evaluator.getAUC``.

    Args:
        y_true: integer labels, shape ``(n,)`` or ``(n, 1)``.
        scores: class scores ``(n, n_classes)`` (for binary tasks also ``(n,)``).
        task: ``"binary-class"`` (AUC of the class-1 score) or ``"multi-class"``
            (mean one-vs-rest AUC over all score columns).

    Returns:
        The AUC, or ``nan`` when it is undefined (a class absent from
        ``y_true``, or an empty split) -- what medmnist returns there.

    Raises:
        ValueError: unknown task or mismatched shapes.
    """
    y, s = _prepare(y_true, scores, task)
    if y.size == 0:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if task == "binary-class":
            return _roc_auc(y, s)
        total = 0.0
        for i in range(s.shape[1]):
            total += _roc_auc((y == i).astype(float), s[:, i])
        return float(total / s.shape[1])


def _roc_auc(y_binary: np.ndarray, score: np.ndarray) -> float:
    # Older scikit-learn raises where newer ones warn and return nan; make both nan.
    if np.unique(y_binary).size < 2:
        return math.nan
    return float(roc_auc_score(y_binary, score))

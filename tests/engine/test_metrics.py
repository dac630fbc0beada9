"""engine.metrics agrees with medmnist's own evaluator on random scores."""
from __future__ import annotations

import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from medmnist.evaluator import getACC, getAUC

from engine import metrics


def _medmnist(fn, y, s, task):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(y, s, task)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, abs=1e-12)


@st.composite
def problems(draw, n_classes: int | None = None):
    k = n_classes if n_classes is not None else draw(st.integers(3, 11))
    n = draw(st.integers(2, 60))  # medmnist squeezes a single sample to a scalar and fails
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=(n, 1)).astype(np.uint8)  # medmnist's label layout
    scores = rng.random((n, k))
    if draw(st.booleans()):
        scores = scores / scores.sum(axis=1, keepdims=True)  # softmax-like rows
    if draw(st.booleans()):
        scores = np.round(scores, 1)  # ties
    return y, scores


@pytest.mark.e2e
@settings(max_examples=150, deadline=None)
@given(problems(n_classes=2))
def test_binary_matches_medmnist(problem):
    y, s = problem
    task = "binary-class"
    assert _same(metrics.accuracy(y, s, task), _medmnist(getACC, y, s, task))
    assert _same(metrics.auc(y, s, task), _medmnist(getAUC, y, s, task))


@pytest.mark.e2e
@settings(max_examples=150, deadline=None)
@given(problems())
def test_multiclass_matches_medmnist(problem):
    y, s = problem
    task = "multi-class"
    assert _same(metrics.accuracy(y, s, task), _medmnist(getACC, y, s, task))
    assert _same(metrics.auc(y, s, task), _medmnist(getAUC, y, s, task))


def test_binary_one_dimensional_scores_and_flat_labels():
    y = np.array([0, 1, 1, 0, 1])
    s1 = np.array([0.2, 0.7, 0.4, 0.1, 0.9])
    s2 = np.stack([1 - s1, s1], axis=1)
    assert metrics.accuracy(y, s1, "binary-class") == metrics.accuracy(y, s2, "binary-class") == 0.8
    assert metrics.auc(y, s1, "binary-class") == metrics.auc(y, s2, "binary-class") == 1.0


def test_binary_accuracy_is_argmax_for_softmax_scores():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(200, 2))
    s = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = rng.integers(0, 2, 200)
    assert metrics.accuracy(y, s, "binary-class") == np.mean(s.argmax(1) == y)


def test_single_class_split_gives_nan_like_medmnist():
    y = np.ones((4, 1), dtype=np.uint8)
    s = np.array([[0.3, 0.7], [0.6, 0.4], [0.2, 0.8], [0.5, 0.5]])
    assert math.isnan(metrics.auc(y, s, "binary-class"))
    assert math.isnan(_medmnist(getAUC, y, s, "binary-class"))
    assert metrics.accuracy(y, s, "binary-class") == 0.5
    # multi-class: one absent class makes the mean undefined
    y3 = np.array([0, 1, 0, 1])
    s3 = np.random.default_rng(1).random((4, 3))
    assert math.isnan(metrics.auc(y3, s3, "multi-class"))


def test_empty_split_is_nan():
    assert math.isnan(metrics.accuracy(np.zeros(0), np.zeros((0, 2)), "binary-class"))
    assert math.isnan(metrics.auc(np.zeros(0), np.zeros((0, 3)), "multi-class"))


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="task"):
        metrics.auc(np.zeros(3), np.zeros((3, 2)), "multi-label, binary-class")
    with pytest.raises(ValueError, match="labels"):
        metrics.accuracy(np.zeros(3), np.zeros((4, 2)), "binary-class")
    with pytest.raises(ValueError, match="matrix"):
        metrics.auc(np.zeros(3), np.zeros(3), "multi-class")


@pytest.mark.e2e
def test_metrics_module_does_not_import_torch():
    code = "import sys, engine.metrics; sys.exit(1 if 'torch' in sys.modules else 0)"
    repo = Path(__file__).resolve().parents[2]
    assert subprocess.run([sys.executable, "-c", code], cwd=repo).returncode == 0

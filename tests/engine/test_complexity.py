"""Closed-form params and FLOPs (engine.complexity.genotype_*) against fvcore, the reference.

The closed form is what the search uses; fvcore on the built network is the
definition (SPEC §6). Properties over random genotypes of the space at 28³
and 64³ prove they agree; filters are kept small at 64³ so that fvcore's
traced forward pass stays cheap on a CI runner (the closed form is a
polynomial in the widths, so small widths exercise every term).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine.complexity import count_flops, count_params, genotype_complexity, genotype_flops, genotype_params
from engine.model import build_network
from engine.session.measure import ComplexityCounter
from engine.space import VECTOR_LENGTH, Genotype, SearchSpace

vectors = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=VECTOR_LENGTH, max_size=VECTOR_LENGTH)


def _property(max_examples: int):
    """Deterministic (derandomized) examples, no per-example deadline: fvcore traces a forward pass."""
    return settings(max_examples=max_examples, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def _genotype(vector: list[float], filters: int) -> Genotype:
    """A genotype of the paper's space (ops, stacks, modules, edge limit), at ``filters`` width."""
    g = SearchSpace(filters=(filters,)).decode(vector)
    assume(g.feasible)
    return g


def _fvcore(g: Genotype, size, in_channels: int, num_classes: int) -> tuple[int, int]:
    torch.manual_seed(0)
    net = build_network(g, in_channels=in_channels, num_classes=num_classes)
    return count_params(net), count_flops(net, input_size=size, in_channels=in_channels)


def test_published_reference_genotype(reference):
    g = SearchSpace().decode(reference["chromosome"])
    assert genotype_complexity(g, 1, 2, 28) == (18_042, 395_136_016)
    assert (reference["params"], reference["flops_fvcore_28"]) == (18_042, 395_136_016)


@pytest.mark.e2e
@_property(20)
@given(vector=vectors, filters=st.sampled_from([1, 2, 4, 8]), in_channels=st.sampled_from([1, 3]),
       num_classes=st.sampled_from([2, 11]))
def test_equals_fvcore_at_28(vector, filters, in_channels, num_classes):
    g = _genotype(vector, filters)
    assert genotype_complexity(g, in_channels, num_classes, 28) == _fvcore(g, 28, in_channels, num_classes)


@pytest.mark.e2e
@_property(15)
@given(vector=vectors, filters=st.sampled_from([1, 2]), num_classes=st.sampled_from([2, 11]))
def test_equals_fvcore_at_64(vector, filters, num_classes):
    g = _genotype(vector, filters)
    assert genotype_complexity(g, 1, num_classes, 64) == _fvcore(g, 64, 1, num_classes)


@pytest.mark.e2e
@_property(12)
@given(vector=vectors, filters=st.sampled_from([8, 16, 32]),
       sides=st.tuples(*[st.integers(2, 9)] * 3), in_channels=st.sampled_from([1, 2]))
def test_equals_fvcore_on_small_odd_volumes(vector, filters, sides, in_channels):
    """Full paper widths and non-cubic volumes whose odd sides are floored by the max-pool."""
    g = _genotype(vector, filters)
    assert genotype_complexity(g, in_channels, 3, sides) == _fvcore(g, sides, in_channels, 3)


def test_params_do_not_depend_on_input_size_and_flops_grow_with_it():
    m = np.zeros((4, 4), dtype=int)
    m[0, 1] = m[1, 2] = m[2, 3] = m[0, 3] = 1
    g = Genotype.from_cell(m, [0, 12], n_stacks=2, n_modules=2, n_filters=16)
    assert genotype_params(g, 1, 2) == count_params(build_network(g))
    assert genotype_flops(g, 28) < genotype_flops(g, 64)
    assert genotype_flops(g, (28, 28, 28)) == genotype_flops(g, 28)


def test_refuses_what_cannot_be_built():
    m = np.zeros((4, 4), dtype=int)
    m[0, 1] = m[1, 2] = m[2, 3] = 1
    two_stacks = Genotype.from_cell(m, [0, 3], n_stacks=2)
    with pytest.raises(ValueError, match="too small for 2 stacks"):
        genotype_flops(two_stacks, (1, 8, 8))
    with pytest.raises(ValueError, match="input_size"):
        genotype_flops(two_stacks, (8, 8))
    infeasible = Genotype.from_cell(np.zeros((7, 7), dtype=int), [0] * 5)
    with pytest.raises(ValueError, match="infeasible"):
        genotype_complexity(infeasible, 1, 2, 28)


def test_counter_of_a_session_uses_its_data_shape():
    m = np.zeros((3, 3), dtype=int)
    m[0, 1] = m[1, 2] = 1
    g = Genotype.from_cell(m, [4])
    assert ComplexityCounter(3, 5, (6, 8, 10)).get(g) == _fvcore(g, (6, 8, 10), 3, 5)

"""Overrides that turn the ``quick`` profile into a tiny real search for tests."""

# A tiny real search: conv3 operations only, 1 stack × 1 module × 8 filters,
# one training batch per epoch on a tenth of the bundled AdrenalMNIST3D.
TINY = [
    "run.device='cpu'",
    "space.ops=[0,3,9,12]",
    "space.stacks=[1]",
    "space.modules=[1]",
    "space.filters=[8]",
    "space.max_edges=9",  # the paper's; quick's smaller cells would change which candidates train
    "search.population=4",
    "search.budget=8",
    "search.fitness='val_auc'",
    "data.search_fraction=0.1",
    "training.epochs=1",
    "training.max_batches_per_epoch=1",
    "training.batch_size=32",
    "training.patience=2",
    "final.top_k=0",
    "final.epochs=3",  # a test that turns the final phase on gets quick's old one: 3 epochs, seed 0
    "final.seeds=[0]",
    "search.pruning='none'",  # tests that prune say so (tests/engine/test_pruning.py)
]

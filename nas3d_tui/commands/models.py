"""``nas3d-tui models``: the published models that ship with nas3d-tui (``published:<name>``)."""
from __future__ import annotations

import argparse

NAME = "models"
HELP = "list the published models that ship with nas3d-tui (use them as published:NAME in train and predict)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def main(args: argparse.Namespace) -> int:
    from ..published import PREFIX, published_models

    for m in published_models():
        size = f"{m.params:,} params · {m.flops / 1e6:.0f}M FLOPs" if m.params and m.flops else ""
        scores = f"test AUC {m.test_auc:.4f} · ACC {m.test_acc:.4f}" if m.test_auc is not None else ""
        print(f"{PREFIX + m.name:<26} {m.dataset} 28³ · {m.compact} · {size} · {scores}")
    print("retrain: nas3d-tui train published:NAME · classify: nas3d-tui predict published:NAME INPUT...")
    return 0

"""Build the model bundles of the published models that ship with nas3d-tui (``nas3d_tui/models/``).

Run once when a published model is added; the bundles are committed. For each
published genotype (the paper's reference implementation, Apache-2.0): decode
its chromosome, load its published weights into this project's network
(``engine.model.load_reference_weights``), score it on its dataset's test
split, refuse to write it unless the test metrics match the published ones,
and write a bundle (``engine.bundle``) that ``train`` and ``predict`` name as
``published:<name>``.

Usage: python scripts/build_published_models.py
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SOURCES = {
    # name: (chromosome JSON, published weights, dataset, expected test AUC, ACC)
    "adrenalmnist3d": ("tests/fixtures/reference/adrenalmnist3d_model90.json",
                       "tests/fixtures/reference/adrenalmnist3d_model90_weights.pt", "adrenalmnist3d", 0.8838, 0.8423),
}


def main() -> int:
    import torch

    from engine import metrics
    from engine.bundle import write_bundle
    from engine.complexity import count_flops, count_params
    from engine.data import load_dataset
    from engine.model import build_network, load_reference_weights
    from engine.session.final import majority_acc, preprocessing_of
    from engine.space import SearchSpace

    for name, (chrom_file, weights_file, flag, want_auc, want_acc) in SOURCES.items():
        source = json.loads((REPO / chrom_file).read_text())
        genotype = SearchSpace().decode(source["chromosome"])
        data = load_dataset(flag, 28)
        net = build_network(genotype, in_channels=1, num_classes=data.num_classes)
        load_reference_weights(net, torch.load(REPO / weights_file, map_location="cpu", weights_only=True))
        net.eval()
        with torch.inference_mode():
            scores = torch.softmax(net(data.test.x), dim=1).numpy()
        y = data.test.y.numpy()
        auc, acc = metrics.auc(y, scores, data.task), metrics.accuracy(y, scores, data.task)
        if (round(auc, 4), round(acc, 4)) != (want_auc, want_acc):
            raise SystemExit(f"{name}: test AUC {auc:.4f} / ACC {acc:.4f}, published {want_auc} / {want_acc}")
        out = REPO / "nas3d_tui" / "models" / name
        if out.exists():
            shutil.rmtree(out)
        write_bundle(
            out, genotype, net.state_dict(), preprocessing_of(data), num_classes=data.num_classes, dataset=flag,
            seed=0,
            metrics=dict(test_auc=auc, test_acc=acc, params=count_params(net), flops=count_flops(net, 28),
                         majority_acc=majority_acc(data.test), source=source["source"]),
        )
        (out / "chromosome.json").write_text(json.dumps({"source": source["source"],
                                                         "chromosome": source["chromosome"]}, indent=1) + "\n")
        print(f"{name}: {genotype.compact} · test AUC {auc:.4f} ACC {acc:.4f} -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

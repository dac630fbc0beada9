"""``nas3d-tui resume RUN_DIR``: continue a stopped or crashed run from its search state."""
from __future__ import annotations

import argparse

NAME = "resume"
HELP = "continue a stopped or crashed run"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="the run directory")
    p.add_argument("--headless", action="store_true", help="no dashboard: rich progress output for batch jobs")


def main(args: argparse.Namespace) -> int:
    from engine.session import Session
    from engine.session.retrain import Retrain, is_train_run

    from .run import drive

    if is_train_run(args.run_dir):  # a `nas3d-tui train` run: its seeds left to retrain
        from .train import drive as drive_train

        return drive_train(Retrain.resume_from(args.run_dir), dashboard=not args.headless)
    return drive(Session.resume_from(args.run_dir), args.headless)

"""``nas3d-tui profiles``: the shipped profiles and what each is for."""
from __future__ import annotations

import argparse

NAME = "profiles"
HELP = "list the shipped profiles"


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def main(args: argparse.Namespace) -> int:
    from engine.profile import list_profiles

    for name, description in list_profiles():
        print(f"{name:<18} {description}")
    return 0

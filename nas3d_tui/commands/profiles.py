"""``nas3d-tui profiles``: the shipped profiles, how many distinct cells each space has, and what each is for."""
from __future__ import annotations

import argparse

NAME = "profiles"
HELP = "list the shipped profiles (with the number of distinct cells of each search space)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def cells_text(name: str) -> str:
    """``"250 cells"``, ``"more than 5,000 cells"`` (too many to count quickly), or ``"? cells"`` (a profile that does not load)."""
    from engine.errors import UserError
    from engine.exhaustive import MAX_CELLS, count_cells
    from engine.profile import load_profile
    from engine.space import SearchSpace

    try:
        s = load_profile(name).space
        n = count_cells(SearchSpace(ops=s.ops, stacks=s.stacks, modules=s.modules, filters=s.filters, max_edges=s.max_edges))
    except (UserError, ValueError):
        return "? cells"
    return f"more than {MAX_CELLS:,} cells" if n is None else f"{n:,} cells"


def main(args: argparse.Namespace) -> int:
    from engine.profile import list_profiles

    for name, description in list_profiles():
        print(f"{name:<18} {cells_text(name):<22} {description}")
    return 0

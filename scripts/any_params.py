"""List the parameters of engine functions annotated ``Any`` (issue 22's measure of untyped seams).

Usage: python scripts/any_params.py [ROOT ...]   (default: engine)
Prints one ``file:line function(param)`` per parameter and a count. ``Any`` inside a container
(``dict[str, Any]``: a JSON value) is not counted; ``Any`` or ``Any | None`` is.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path


def _is_any(node: ast.expr | None) -> bool:
    if node is None:
        return False
    if isinstance(node, ast.Name) and node.id == "Any":
        return True
    if isinstance(node, ast.Attribute) and node.attr == "Any":
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _is_any(node.left) or _is_any(node.right)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            return _is_any(ast.parse(node.value, mode="eval").body)
        except SyntaxError:
            return False
    return False


def any_params(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                params = a.posonlyargs + a.args + a.kwonlyargs + [p for p in (a.vararg, a.kwarg) if p]
                for p in params:
                    if _is_any(p.annotation):
                        found.append(f"{path}:{p.lineno} {node.name}({p.arg})")
    return found


def main(argv: list[str]) -> int:
    roots = [Path(r) for r in (argv or ["engine"])]
    found = [line for root in roots for line in any_params(root)]
    print("\n".join(found))
    print(f"any_params: {len(found)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

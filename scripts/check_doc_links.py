"""Check the links of README.md and docs/*.md, and the README's size (issue 31).

Usage: python scripts/check_doc_links.py [--max-readme-bytes N]   (default 12288)

Every Markdown link ``[text](path#anchor)`` outside code blocks must name a file
that exists (relative to the page) and, for a ``.md`` target, a heading whose
GitHub-style anchor is ``anchor``. Every backticked repository path
(``engine/...``, ``tests/...``, ``benchmarks/...``, ...) must exist. Prints one
line per broken link or path, then a count; exit 1 when anything is broken or
the README is too large. Reads files only.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CODE_BLOCK = re.compile(r"```.*?```", re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)
REPO_PATH = re.compile(r"`((?:engine|tui|nas3d_tui|tests|scripts|benchmarks|examples|profiles|docs|\.ci)/[\w./-]*)`")


def anchors(page: Path) -> set[str]:
    """The GitHub anchors of a page's headings (lower case, punctuation dropped, spaces to hyphens)."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    for heading in HEADING.findall(CODE_BLOCK.sub("", page.read_text(encoding="utf-8"))):
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
        slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def check(page: Path) -> list[str]:
    """Broken links and missing repository paths of one page, one line each."""
    text = page.read_text(encoding="utf-8")
    problems = []
    for url in LINK.findall(CODE_BLOCK.sub("", text)):
        if re.match(r"https?://|mailto:", url):
            continue
        path, _, frag = url.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            problems.append(f"{page.relative_to(REPO)}: no file for link {url}")
        elif frag and (target.suffix != ".md" or frag not in anchors(target)):
            problems.append(f"{page.relative_to(REPO)}: no heading for link {url}")
    for path in REPO_PATH.findall(text):
        if not (REPO / path).exists():
            problems.append(f"{page.relative_to(REPO)}: no such path `{path}`")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-readme-bytes", type=int, default=12288)
    args = ap.parse_args()
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    problems = [p for page in pages for p in check(page)]
    links = sum(len(LINK.findall(CODE_BLOCK.sub("", page.read_text(encoding="utf-8")))) for page in pages)
    size = (REPO / "README.md").stat().st_size
    for line in problems:
        print(line)
    print(f"{links} links in {len(pages)} pages, {len(problems)} broken; README.md {size} bytes (limit {args.max_readme_bytes})")
    return 1 if problems or size >= args.max_readme_bytes else 0


if __name__ == "__main__":
    sys.exit(main())

"""House rules a reader relies on: the formatter formats everything, and nothing cites a file
outside the repository."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = ("DESIGN" + ".md", "../" + "shared")  # the design document is docs/design.md


def tracked(*patterns: str) -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", *patterns], cwd=ROOT, check=True, capture_output=True, text=True
    )
    return [ROOT / name for name in listed.stdout.split() if (ROOT / name).exists()]


def test_no_code_opts_out_of_the_formatter():
    marks = ("fmt: " + "skip", "fmt: " + "off")  # (spelt in two parts so this file passes)
    found = [f"{p.relative_to(ROOT)}" for p in tracked("*.py") for m in marks if m in p.read_text()]
    assert not found, found


def test_nothing_cites_a_file_outside_the_repository():
    files = tracked("*.py", "*.md", "*.yaml", "*.sh", "*.toml", "Makefile")
    assert len(files) > 100  # (git sees the tree)
    found = [
        f"{p.relative_to(ROOT)}: {name}" for p in files for name in OUTSIDE if name in p.read_text()
    ]
    assert not found, found

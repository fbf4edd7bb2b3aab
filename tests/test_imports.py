"""The map of the code (docs/design.md, "Map of the code"): which room may import which.

Two checks: every ``import`` statement in ``seal/`` names only rooms its own room may use (read
from the source, lazy imports inside functions included), and importing a room does not load
the packages it must stay free of (a subprocess, so nothing is loaded already).
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SEAL = Path(__file__).resolve().parents[1] / "seal"

# room → the other seal rooms it may import (a room is a subpackage or a top-level module)
ALLOWED = {
    "groups": set(),
    "symmetry": {"groups"},
    "models": {"groups"},
    "data": {"groups"},  # the generators only by name, on first use (seal.data.generated)
    "generation": {"data", "files"},  # data: the ATLAS key names (seal.data.atlas_layout)
    "metrics": set(),
    "tasks": {"metrics"},
    "callbacks": set(),
    # data: the variation settings (seal.data.variations), checked before training
    "evaluation": {"groups", "symmetry", "metrics", "callbacks", "data"},
    "reports": {"evaluation"},  # evaluation.plots: the HEP figure style
    "files": set(),
    "checkpoints": {"files"},
    "runlock": set(),
    "config_checks": {"files"},
    "testing": {"groups"},
    # the rest through Hydra's _target_ strings; models only for the backbone × treatment check,
    # callbacks for the preemption handler every run gets, runlock for one run per folder
    "train": {
        "checkpoints",
        "config_checks",
        "models",
        "symmetry",
        "evaluation",
        "callbacks",
        "runlock",
    },
}

# room → packages that importing it must not load
FORBIDDEN = {
    "seal.models": ("seal.symmetry", "pytorch_lightning"),
    "seal.data": ("seal.symmetry", "seal.generation"),
    "seal.data.jet_datamodule": ("seal.symmetry", "seal.generation"),
    "seal.data.dimuon_datamodule": ("seal.symmetry", "seal.generation"),
    "seal.tasks": ("seal.symmetry",),
    "seal.symmetry": ("pytorch_lightning",),
    "seal.generation.jets": ("torch", "pytorch_lightning"),
    "seal.generation.dimuon": ("torch", "pytorch_lightning"),
    "seal.metrics.bootstrap": ("torch", "pytorch_lightning"),
    "seal.metrics.tagging": ("torch", "pytorch_lightning"),
    "seal.reports.compare": ("torch", "pytorch_lightning"),
    "seal.reports.sweep": ("torch", "pytorch_lightning"),
}


def room_of(path: Path) -> str:
    parts = path.relative_to(SEAL).parts
    return parts[0] if len(parts) > 1 else path.stem


def seal_imports(path: Path) -> set[str]:
    """The seal rooms ``path`` imports (``from seal.x import …``, ``import seal.x``)."""
    rooms = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        rooms |= {n.split(".")[1] for n in names if n.startswith("seal.")}
    return rooms


def test_every_room_is_on_the_map():
    rooms = {room_of(p) for p in SEAL.rglob("*.py") if p.name != "__init__.py" or p.parent != SEAL}
    assert rooms == set(ALLOWED), "add the new room to ALLOWED here and to docs/design.md"


@pytest.mark.parametrize("path", sorted(SEAL.rglob("*.py")), ids=lambda p: str(p.relative_to(SEAL)))
def test_imports_follow_the_map(path):
    if path == SEAL / "__init__.py":
        assert not seal_imports(path)
        return
    room = room_of(path)
    outside = seal_imports(path) - {room} - ALLOWED[room]
    assert not outside, f"{path.relative_to(SEAL)} ({room}) imports {sorted(outside)}"


def test_the_map_is_in_the_design_document():
    design = (SEAL.parent / "docs" / "design.md").read_text()
    for room, allowed in ALLOWED.items():
        line = next((ln for ln in design.splitlines() if ln.startswith(f"| `{room}`")), None)
        assert line is not None, f"docs/design.md has no row for {room}"
        cells = [c.strip() for c in line.strip("|").split("|")]
        listed = {w.strip("` ") for w in cells[2].split(",") if w.strip("` –")}
        assert listed == allowed, f"docs/design.md lists {sorted(listed)} for {room}"


@pytest.mark.parametrize("module", FORBIDDEN)
def test_import_does_not_load(module):
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    )
    loaded = json.loads(result.stdout)
    for forbidden in FORBIDDEN[module]:
        assert not [m for m in loaded if m == forbidden or m.startswith(forbidden + ".")]

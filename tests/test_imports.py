"""Models, data and tasks know nothing of symmetry: importing them loads no seal.symmetry, and
the models and the plain-PyTorch symmetry API load no Lightning."""

import json
import subprocess
import sys

import pytest

# module → packages it must not load
FORBIDDEN = {
    "seal.models": ("seal.symmetry", "pytorch_lightning"),
    "seal.data": ("seal.symmetry",),
    "seal.tasks": ("seal.symmetry",),
    "seal.symmetry": ("pytorch_lightning",),
}


@pytest.mark.parametrize("module", FORBIDDEN)
def test_import_does_not_load(module):
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout
    )
    for forbidden in FORBIDDEN[module]:
        assert not [m for m in loaded if m == forbidden or m.startswith(forbidden + ".")]

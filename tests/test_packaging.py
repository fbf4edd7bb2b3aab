"""The distribution: `python -m build` makes a wheel and an sdist, and the wheel, installed alone
into a fresh virtual environment, runs the plain-PyTorch symmetry loss without Lightning."""

import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

import seal

ROOT = Path(__file__).resolve().parents[1]

USE = textwrap.dedent(
    """
    import importlib.metadata, sys
    import torch
    import seal
    from seal.groups import Boosts
    from seal.symmetry import SymmetryLoss

    class Energy(torch.nn.Module):
        def forward(self, batch):
            return (batch["p4"][..., 0] * batch["mask"]).sum(1)

    p3 = torch.randn(8, 3, 3, dtype=torch.float64)
    p4 = torch.cat([p3.norm(dim=-1, keepdim=True) + 1.0, p3], -1)
    batch = {"p4": p4, "mask": torch.ones(8, 3, dtype=torch.bool)}
    penalty = SymmetryLoss("gsymm", group=Boosts(beta_max=0.5))(Energy(), batch)
    assert penalty > 0 and torch.isfinite(penalty), penalty
    assert "pytorch_lightning" not in sys.modules and "lightning" not in sys.modules
    print(seal.__file__, seal.__version__, importlib.metadata.version("seal-hep"))
    """
)


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    build = [sys.executable, "-m", "build", "--wheel", "--sdist", "--outdir", str(out), str(ROOT)]
    subprocess.run(build, check=True, capture_output=True, text=True)
    return out


def test_build_makes_a_wheel_and_an_sdist_named_seal_hep(dist):
    (wheel,) = dist.glob("seal_hep-*.whl")
    (sdist,) = dist.glob("seal_hep-*.tar.gz")
    assert wheel.name.startswith(f"seal_hep-{seal.__version__}-")
    assert sdist.name == f"seal_hep-{seal.__version__}.tar.gz"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(f"seal_hep-{seal.__version__}.dist-info/METADATA").decode()
    assert "seal/symmetry/loss.py" in names and "seal/generation/jets.py" in names
    assert not [n for n in names if n.startswith("tests/")]
    assert f"Version: {seal.__version__}" in metadata and "Name: seal-hep" in metadata


def test_the_wheel_alone_runs_the_symmetry_loss_without_lightning(dist, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    (wheel,) = dist.glob("seal_hep-*.whl")
    install = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)]
    subprocess.run(install, check=True, capture_output=True, text=True)
    # torch and numpy from this interpreter (the wheel's own dependencies are not installed: no
    # network needed); the path is added plainly, so this environment's editable seal stays out
    target = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(target) / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    result = subprocess.run(
        [str(python), "-c", USE], cwd=tmp_path, check=True, capture_output=True, text=True
    )
    where, version, installed = result.stdout.split()
    assert Path(where).is_relative_to(venv)  # the installed wheel, not the source tree
    assert version == installed == seal.__version__

"""``model.compile``: a ``torch.compile``d view of the task's network.

The compiled module is kept out of the module tree (checkpoints hold ``net.*`` only) and is
bypassed inside the exact δSEAL, whose double backward compiled graphs do not support.
"""

import warnings

import torch
from torch import nn

from seal.symmetry.pairing import double_backward

# the fused penalties' paired-dropout hook is global; it ignores everything but dropout modules,
# so its extra call on the OptimizedModule wrapper is harmless
warnings.filterwarnings("ignore", message=r"Using `torch.compile\(module\)` when there are global")


def attach_compiled(task: nn.Module, compile: bool | str) -> None:
    """``compile``: false, true (inductor) or a backend name (``aot_eager``, ``cudagraphs``...)."""
    compiled = None
    if compile not in (False, None):
        backend = "inductor" if compile is True else str(compile)
        compiled = torch.compile(task.net, backend=backend)
    task.__dict__["_compiled"] = compiled  # not a submodule: no duplicate state-dict keys


def net_output(task: nn.Module, batch: dict) -> torch.Tensor:
    compiled = task.__dict__.get("_compiled")
    if compiled is None or double_backward():
        return task.net(batch)
    return compiled(batch)

"""Wrap a model seal did not write (lloca's ParticleTransformer) and train it with GSEAL.

seal's contract: ``forward(batch) -> (B,)`` logits, every input computed from ``batch["p4"]``
(E, px, py, pz) and ``batch["mask"]`` inside ``forward``, so that transforming ``p4`` is the whole
Lorentz group action. Run ``python docs/examples/outside_model.py``.
"""

import torch
from lloca.backbone.particletransformer import ParticleTransformer
from lloca.framesnet.frames import Frames
from torch import nn

from seal.groups import Boosts
from seal.models.features import FEATURE_NAMES, constituent_features
from seal.symmetry import SymmetryLoss
from seal.testing import random_on_shell


class ParTOnP4(nn.Module):
    """A small ParT (2 layers, width 32, scalar-only attention) on seal's batch dict.

    Parameters
    ----------
    heads, layers : int
        Attention heads (8 scalar channels each, so the width is ``8 * heads``) and blocks.
    **part_options
        Passed to :class:`ParticleTransformer` (``block_params``, ``pair_embed_dims``, ...).
    """

    def __init__(self, heads: int = 4, layers: int = 2, **part_options):
        super().__init__()
        options = dict(embed_dims=(8 * heads,), pair_embed_dims=(16, 16), num_cls_layers=1)
        self.part = ParticleTransformer(
            input_dim=len(FEATURE_NAMES),
            attn_reps="8x0n",  # scalars only: with identity frames this is plain attention
            num_classes=1,
            num_heads=heads,
            num_layers=layers,
            **{**options, **part_options},
        )

    def forward(self, batch: dict) -> torch.Tensor:
        """Logits ``(B,)`` from ``batch["p4"]`` (B, N, 4) and ``batch["mask"]`` (B, N)."""
        dtype = self.part.cls_token.dtype
        p4, mask = batch["p4"].to(dtype), batch["mask"]
        x = constituent_features(p4, mask).transpose(1, 2)  # (B, 7, N): log pT, log E, Δη, Δφ ...
        v = p4[..., [1, 2, 3, 0]].transpose(1, 2)  # (B, 4, N) in ParT's (px, py, pz, E) order
        # identity frames are global: plain attention, and no p_ref needed for preserve_variance
        frames = Frames(is_identity=True, shape=mask.shape, device=p4.device, dtype=dtype)
        # ParT builds its pairwise features (ln m², ln kT, ln z, ln ΔR) from v itself
        return self.part(x, frames, v=v, mask=mask.unsqueeze(1)).squeeze(-1)


def main(batch_size: int = 64, n_particles: int = 16, steps: int = 5, lam: float = 1.0) -> dict:
    """Train ParTOnP4 for a few Adam steps with the GSEAL boost penalty and print the numbers.

    Returns
    -------
    dict
        ``route``/``reason`` chosen by SymmetryLoss, ``identity_penalty`` (β_max = 0; eval
        mode, and ``identity_penalty_train`` in training), ``penalties`` and ``losses`` per
        step, ``dsymm`` (δSEAL by finite differences after training), the ``model`` (left in
        training mode) and the ``batch``.
    """
    torch.manual_seed(0)
    batch = random_on_shell(batch_size, n_particles, seed=0)  # float64, zero-padded
    mass2 = batch["jet_p4"][:, 0] ** 2 - batch["jet_p4"][:, 1:].square().sum(-1)
    batch["target"] = (mass2 > mass2.median()).double()  # a boost-invariant label
    model = ParTOnP4()  # ParT's own dropout (0.1) and BatchNorm stay on

    # g = 1, so g·x = x and the penalty must vanish, in eval mode (route "fused") and in
    # training (dropout on: route "replay"); a SymmetryLoss probes the model once per mode.
    identity = SymmetryLoss("gsymm", group=Boosts(beta_max=0.0))
    identity_eval = identity(model.eval(), batch).item()
    # dropout on: seal replays one RNG state, so the masks match and it stays 0
    identity_train = identity(model.train(), batch).item()

    loss_fn = SymmetryLoss("gsymm", group=Boosts(beta_max=0.5))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    bce = nn.BCEWithLogitsLoss()
    penalties, losses = [], []
    for _ in range(steps):
        output, penalty = loss_fn.with_output(model, batch)
        loss = bce(output, batch["target"].to(output.dtype)) + lam * penalty
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        penalties.append(penalty.item())
        losses.append(loss.item())
    dsymm = SymmetryLoss("dsymm", group=Boosts(), method="finite_difference")(model, batch)

    print(f"route: {loss_fn.route} ({loss_fn.reason})")
    print(f"identity-element penalty: eval {identity_eval:.3e}, train {identity_train:.3e}")
    print("penalty per step:", " ".join(f"{p:.4g}" for p in penalties))
    print("loss per step:   ", " ".join(f"{x:.4g}" for x in losses))
    print(f"δSEAL (finite differences) after training: {dsymm.item():.4g}")
    return dict(
        route=loss_fn.route,
        reason=loss_fn.reason,
        identity_penalty=identity_eval,
        identity_penalty_train=identity_train,
        penalties=penalties,
        losses=losses,
        dsymm=dsymm.item(),
        model=model,
        batch=batch,
    )


if __name__ == "__main__":
    main()

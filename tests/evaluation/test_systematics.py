"""Systematic uncertainties of a tagger (seal.evaluation.systematics): the combination recipe by
hand, a scale-invariant tagger has no energy-scale uncertainty, errors keep the correlation, a
top run writes the table and figure, and bad options are named before training."""

import csv
import json
import math

import h5py
import numpy as np
import pytest
import torch
from conftest import FIXTURE_JETS, TOP_TINY, rewrite, with_shower_weights

from seal.data.jet_datamodule import JetDataModule
from seal.data.systematics import Variation
from seal.evaluation.systematics import METRICS, SystematicsEvaluation, combine, components
from seal.generation.variations import write_variations
from seal.train import run


def variations(*names, group="detector"):
    return [Variation(n, group, None) for n in names]


def test_up_down_pairs_are_one_component_and_the_rest_their_own():
    parts = components(
        variations("energy_scale_up", "energy_scale_down", "position")
        + variations("shower_up", group="modelling")
    )
    assert parts == [
        ("energy_scale", "detector", ["energy_scale_up", "energy_scale_down"]),
        ("position", "detector", ["position"]),
        ("shower_up", "modelling", ["shower_up"]),  # no partner: its own
    ]


def test_the_combination_is_the_atlas_recipe_by_hand():
    nominal = {m: 100.0 for m in METRICS}
    varied = {
        "es_up": {m: 103.0 for m in METRICS},  # +3 %
        "es_down": {m: 96.0 for m in METRICS},  # −4 %: the pair takes 4 %
        "position": {m: 101.0 for m in METRICS},  # 1 %
        "shower": {m: 88.0 for m in METRICS},  # 12 %, another group
    }
    parts = components(
        variations("es_up", "es_down", "position") + variations("shower", group="modelling")
    )
    out = combine(nominal, varied, parts)
    for m in METRICS:
        assert out["es_up"][m] == pytest.approx(0.03) and out["es"][m] == pytest.approx(0.04)
        assert out["group:detector"][m] == pytest.approx(math.hypot(0.04, 0.01))
        assert out["group:modelling"][m] == pytest.approx(0.12)
        assert out["total"][m] == pytest.approx(math.sqrt(0.04**2 + 0.01**2 + 0.12**2))


class MassOverPt(torch.nn.Module):
    """A 'tagger' scoring jets by m/pT of the sum of their constituents: unchanged by any
    common energy scale, changed by losing constituents."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, batch):
        p = (batch["p4"].double() * batch["mask"].unsqueeze(-1)).sum(1)
        m2 = p[:, 0] ** 2 - (p[:, 1:] ** 2).sum(-1)
        return (m2.clamp_min(0).sqrt() / torch.hypot(p[:, 1], p[:, 2]) + self.dummy).float()


@pytest.fixture(scope="module")
def scale_invariant(tmp_path_factory):
    data = JetDataModule(FIXTURE_JETS, split=(0.0, 0.0, 1.0), batch_size=64)
    data.setup("test")
    module = MassOverPt()
    logits, labels, weights, index = [], [], [], []
    for batch in data.evaluation_dataloader():
        logits.append(module(batch).detach().numpy())
        labels.append(batch["target"].numpy())
        weights.append(batch["weight"].numpy())
        index.append(batch["index"].numpy())
    nominal = [np.concatenate(x) for x in (logits, labels, weights)]
    nominal = (*nominal, None, np.concatenate(index))
    out = tmp_path_factory.mktemp("syst")
    figures = {}
    metrics = SystematicsEvaluation()(module, data, nominal, out, figures, "scale-invariant")
    return metrics, out, figures, nominal


def test_a_scale_invariant_tagger_has_no_energy_scale_uncertainty(scale_invariant):
    metrics, _, _, _ = scale_invariant
    for m in METRICS:
        assert metrics[f"syst/energy_scale/{m}"] < 1e-6  # ranks unchanged (float rounding)
    # losing constituents does move m/pT (the AUC; a 1/ε_B of 150 background jets may not step)
    assert metrics["syst/efficiency/auc"] > 1e-4 and metrics["syst/efficiency/auc_err"] > 0
    assert metrics["syst/total/rej@0.5"] == pytest.approx(
        math.sqrt(
            sum(
                metrics[f"syst/{c}/rej@0.5"] ** 2
                for c in ("energy_scale", "energy_resolution", "position", "efficiency")
            )
        )
    )


def test_errors_resample_the_matched_jets_together(scale_invariant):
    metrics, out, _, nominal = scale_invariant
    from seal.metrics.bootstrap import tagging_errors

    logits, labels, weights, _, _ = nominal
    alone = tagging_errors(labels, logits, weights)["auc_err"]  # the AUC's own bootstrap error
    # the shift of the AUC under a 2 % constituent loss is far more precise than the AUC itself
    assert 0 < metrics["syst/efficiency/auc_err"] < 0.5 * alone
    rows = list(csv.DictReader(open(out / "systematics.csv")))
    kinds = [(r["kind"], r["name"]) for r in rows]
    assert kinds[-1] == ("total", "total") and ("pair", "energy_scale") in kinds
    assert ("group", "detector") in kinds and ("variation", "energy_scale_up") in kinds


def test_a_top_run_writes_its_systematics(compose_cfg, tmp_path):
    metrics = run(compose_cfg(["+experiment=top_baseline", *TOP_TINY]))
    assert (tmp_path / "systematics.csv").exists() and (tmp_path / "systematics.png").exists()
    for key in ("syst/total/rej@0.5", "syst/detector/rej@0.3", "syst/energy_scale/auc"):
        assert math.isfinite(metrics[key]) and metrics[key] >= 0
        assert metrics[f"{key}_err"] >= 0  # inf for 1/ε_B where a resample of the few test
        # jets lets no background pass (the fixture's test split): not determined, said so
    assert math.isfinite(metrics["syst/total/auc_err"])
    assert 0 < metrics["syst/seconds"]


def test_no_systematics_when_switched_off(compose_cfg, tmp_path):
    metrics = run(
        compose_cfg(["+experiment=top_baseline", *TOP_TINY, "evaluation.systematics=null"])
    )
    assert not (tmp_path / "systematics.csv").exists()
    assert not any(k.startswith("syst/") for k in metrics)


@pytest.mark.parametrize(
    "override, message",
    [
        ("evaluation.systematics.settings.efficiency=1.5", r"efficiency must be in \[0, 1\)"),
        ("evaluation.systematics.settings.scale=0", r"scale must be in \(0, 1\)"),
        ("evaluation.systematics.variations=/nowhere/syst", r"\['/nowhere/syst'\] not found"),
        ("evaluation.systematics.pt_tolerance=0", r"pt_tolerance must be in \(0, 1\)"),
        ("evaluation.systematics.variations=null", "must be 'auto', a folder or a list"),
        ("evaluation.systematics.batch_size=0", "batch_size must be ≥ 1"),
        ("evaluation.systematics.jets=50", r"jets must be ≥ 100 test jets or null \(all\); got 50"),
    ],
)
def test_bad_systematics_options_are_named_before_training(
    compose_cfg, tmp_path, override, message
):
    from hydra.errors import InstantiationException

    with pytest.raises((ValueError, FileNotFoundError, InstantiationException), match=message):
        run(compose_cfg(["+experiment=top_baseline", *TOP_TINY, override]))
    assert not (tmp_path / "checkpoints").exists()


def test_generator_weights_are_a_modelling_group_computed_by_hand(tmp_path):
    from seal.metrics.tagging import tagging_metrics

    ratio = with_shower_weights(tmp_path / "w.h5")
    data = JetDataModule(tmp_path / "w.h5", split=(0.0, 0.0, 1.0), batch_size=64)
    data.setup("test")
    module = MassOverPt()
    batches = list(data.evaluation_dataloader())
    logits = np.concatenate([module(b).detach().numpy() for b in batches])
    labels, weights, index = (
        np.concatenate([b[k].numpy() for b in batches]) for k in ("target", "weight", "index")
    )
    metrics = SystematicsEvaluation()(
        module, data, (logits, labels, weights, None, index), tmp_path, {}, "weights"
    )
    nominal = tagging_metrics(labels, logits, weights)
    for side, column in (("up", 1), ("down", 2)):
        varied = tagging_metrics(labels, logits, weights * ratio[index, column])
        expected = abs(varied["rej@0.5"] / nominal["rej@0.5"] - 1)
        assert metrics[f"syst/isr_{side}/rej@0.5"] == pytest.approx(expected, rel=1e-6)
    assert metrics["syst/isr/rej@0.5"] == max(
        metrics["syst/isr_up/rej@0.5"], metrics["syst/isr_down/rej@0.5"]
    )
    assert metrics["syst/modelling/rej@0.5"] == pytest.approx(metrics["syst/isr/rej@0.5"])
    assert metrics["syst/total/rej@0.5"] == pytest.approx(
        math.hypot(metrics["syst/detector/rej@0.5"], metrics["syst/modelling/rej@0.5"])
    )


def test_a_two_point_sample_is_evaluated_whole_with_its_own_bootstrap(tmp_path, scale_invariant):
    write_variations(FIXTURE_JETS, tmp_path, names=["efficiency"], progress=False)
    data = JetDataModule(FIXTURE_JETS, split=(0.0, 0.0, 1.0), batch_size=64)
    data.setup("test")
    matched, _, _, nominal = scale_invariant
    evaluation = SystematicsEvaluation(two_point={"lossy": str(tmp_path / "efficiency.h5")})
    metrics = evaluation(MassOverPt(), data, nominal, tmp_path, {}, "two-point")
    # the same jets as the matched variation: the same shift; but resampled independently
    for m in METRICS:
        assert metrics[f"syst/lossy/{m}"] == pytest.approx(matched[f"syst/efficiency/{m}"])
    assert metrics["syst/lossy/auc_err"] > 2 * matched["syst/efficiency/auc_err"]
    assert metrics["syst/modelling/auc"] == pytest.approx(metrics["syst/lossy/auc"])
    rows = list(csv.DictReader(open(tmp_path / "systematics.csv")))
    assert ("two-point", "lossy", "modelling") in [(r["kind"], r["name"], r["group"]) for r in rows]


def test_a_two_point_sample_of_another_selection_is_refused(tmp_path):
    rewrite(FIXTURE_JETS, tmp_path / "other.h5")
    with h5py.File(tmp_path / "other.h5", "a") as f:
        settings = json.loads(f["metadata"].attrs["settings"])
        f["metadata"].attrs["settings"] = json.dumps({**settings, "pt_min": 500.0})
    data = JetDataModule(FIXTURE_JETS, split=(0.0, 0.0, 1.0))
    with pytest.raises(
        ValueError, match=r"another jet selection than .*\(pt_min 400.0 here, 500.0 there\)"
    ):
        data.alternative_test_arrays(tmp_path / "other.h5")
    with pytest.raises(FileNotFoundError, match=r"two_point: \{'alt': '/nowhere.h5'\} not found"):
        SystematicsEvaluation(two_point={"alt": "/nowhere.h5"})
    with pytest.raises(ValueError, match="two_point must map names to files"):
        SystematicsEvaluation(two_point="/nowhere.h5")


def test_the_first_n_test_jets_only_when_asked(scale_invariant, tmp_path):
    _, _, _, nominal = scale_invariant
    data = JetDataModule(FIXTURE_JETS, split=(0.0, 0.0, 1.0), batch_size=64)
    data.setup("test")
    module = MassOverPt()
    fewer = SystematicsEvaluation(jets=150)(module, data, nominal, tmp_path, {}, "150 jets")
    first = tuple(x if x is None else x[:150] for x in nominal)
    alone = SystematicsEvaluation()(module, data, first, tmp_path, {}, "the same 150")
    for key, value in alone.items():
        if key != "syst/seconds":
            assert fewer[key] == value, key
    shuffled = np.random.default_rng(0).permutation(len(nominal[4]))  # loader order, any
    permuted = tuple(x if x is None else x[shuffled] for x in nominal)
    again = SystematicsEvaluation(jets=150)(module, data, permuted, tmp_path, {}, "permuted")
    for key, value in fewer.items():
        if key != "syst/seconds":
            assert again[key] == value, key  # the first 150 rows, not the first 150 given


def test_a_two_point_name_that_is_already_taken_is_refused(tmp_path, scale_invariant):
    for taken in ("energy_scale", "energy_scale_up", "detector", "total", "modelling"):
        with pytest.raises(ValueError, match=rf"two_point: \['{taken}'\] already name"):
            SystematicsEvaluation(two_point={taken: str(FIXTURE_JETS)})
    with_shower_weights(tmp_path / "w.h5")  # its weights bring isr_up, isr_down and isr
    data = JetDataModule(tmp_path / "w.h5", split=(0.0, 0.0, 1.0), batch_size=64)
    data.setup("test")
    _, _, _, nominal = scale_invariant
    evaluation = SystematicsEvaluation(two_point={"isr": str(FIXTURE_JETS)})
    with pytest.raises(ValueError, match=r"two_point: \['isr'\] already name a variation"):
        evaluation(MassOverPt(), data, nominal, tmp_path, {}, "clash")

#!/usr/bin/env bash
# The precision study of docs/results.md (systematic uncertainties): the top-tagging table's
# models on the detector set (configs/data/top_detector.yaml, generated on first use), each run
# evaluated under the detector variations, Pythia's ISR/FSR weights and — once `alternative` has
# made it — another hadronisation as a two-point comparison (evaluation.systematics), and SEAL
# along the energy scale against λ. 3 seeds, the §3 budget (8 epochs at most).
#   bash scripts/results/precision.sh alternative|table|backbones|escale|cost
#   python scripts/results/summarise.py
# Each training stage is one Hydra multirun under outputs/results/precision_<stage> (DIR=… to
# change; SEEDS=… and EXPERIMENTS=a,b for some seeds or models; WEIGHTS=… for some λ of escale).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
ALTERNATIVE=data/top_detector_hadronisation.h5  # the two-point partner (Lund a, b = 0.50, 0.75)
COMMON=(data=top_detector logger=csv trainer.max_epochs=8 "evaluation.betas=[0.0,0.5,0.9]"
        ++evaluation.spectrum_jets=100)
if [ -f "$ALTERNATIVE" ]; then  # ++: the sweep-level config (no experiment yet) is the toy's
  COMMON+=("++evaluation.systematics.two_point={hadronisation:$PWD/$ALTERNATIVE}")
fi
stage=${1:?usage: precision.sh alternative|table|backbones|escale|cost}
case $stage in
  alternative)  # 25 000 jets of the same selection with another hadronisation: 8 000 test jets
    exec "$PY" scripts/generate_jets.py --out "$ALTERNATIVE" --alternative hadronisation \
      --n-signal 12500 --n-background 12500 --n-constituents 80 --chunk-jets 500 --accept window \
      --detector --shower-weights --seed 2027 --pt-min 400 --pt-max 1200 --n-slices 8 ${EXTRA:-} ;;
  table)   # accuracy against precision: every treatment of the §3 table, L-GATr and LLoCa
    runs=(+experiment=${EXPERIMENTS:-top_baseline,top_augment,top_gsymm,top_dsymm,top_hybrid,top_lloca,top_lloca_beam,top_lgatr}) ;;
  backbones)  # the §3 backbones, plain, on their first 32 constituents
    runs=(+experiment=top model/backbone=${BACKBONES:-part,lgatr_slim} treatment=none
          data.n_constituents=32) ;;
  escale)  # GSEAL along the energy scale (s within ×/÷ 1.05) against λ; λ = 0 is the table's plain row
    runs=(+experiment=top treatment=gsymm symmetry/group=energy_scale
          symmetry.weight=${WEIGHTS:-0.1,1,10,100}) ;;
  cost)  # the systematic evaluation timed again on finished table runs (RUNS=… for some) at
          # today's batch size (a run's own config keeps the one it trained with); the rest of
          # the evaluation cut to the nominal pass
    # shellcheck disable=SC2086
    exec "$PY" scripts/evaluate.py --out outputs/results/"${DIR:-precision_cost}" \
      ${RUNS:-outputs/results/precision_table*/[0-9]*} "evaluation.betas=[0.0]" \
      evaluation.shift_beta=0.0 evaluation.spectrum_jets=2 evaluation.systematics.batch_size=128 ;;
  *) echo "unknown stage $stage" >&2; exit 2 ;;
esac
exec "$PY" train.py -m seed="${SEEDS:-0,1,2}" "${runs[@]}" "${COMMON[@]}" \
  hydra.sweep.dir=outputs/results/"${DIR:-precision_$stage}" ${EXTRA:-}

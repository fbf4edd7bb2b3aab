#!/usr/bin/env bash
# The precision study of docs/results.md (systematic uncertainties): the top-tagging table's
# models on the detector set (configs/data/top_detector.yaml, generated on first use), each run
# evaluated under the detector variations and Pythia's ISR/FSR weights (evaluation.systematics),
# and SEAL along the energy scale against λ. 3 seeds, the §3 budget (8 epochs at most).
#   bash scripts/results/precision.sh table|escale
#   python scripts/results/summarise.py
# Each stage is one Hydra multirun under outputs/results/precision_<stage> (DIR=… to change;
# SEEDS=… and EXPERIMENTS=a,b for some seeds or models; WEIGHTS=… for some λ of escale).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
COMMON=(data=top_detector logger=csv trainer.max_epochs=8 "evaluation.betas=[0.0,0.5,0.9]"
        ++evaluation.spectrum_jets=500)
stage=${1:?usage: precision.sh table|escale}
case $stage in
  table)   # accuracy against precision: every treatment of the §3 table, L-GATr and LLoCa
    runs=(+experiment=${EXPERIMENTS:-top_baseline,top_augment,top_gsymm,top_dsymm,top_hybrid,top_lloca,top_lloca_beam,top_lgatr}) ;;
  escale)  # GSEAL along the energy scale (s within ×/÷ 1.05) against λ, beside plain training
    runs=(+experiment=top treatment=gsymm symmetry/group=energy_scale
          symmetry.weight=${WEIGHTS:-0.1,1,10,100}) ;;
  *) echo "unknown stage $stage" >&2; exit 2 ;;
esac
exec "$PY" train.py -m seed="${SEEDS:-0,1,2}" "${runs[@]}" "${COMMON[@]}" \
  hydra.sweep.dir=outputs/results/"${DIR:-precision_$stage}" ${EXTRA:-}

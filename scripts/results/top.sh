#!/usr/bin/env bash
# The top-tagging studies of docs/results.md, on the results set (configs/data/top_window.yaml,
# generated on first use), 3 seeds each, CPU-sized (8 epochs at most, 8 000 training jets).
#   bash scripts/results/top.sh table|extrap|alternatives|efficiency|equivariant|extrap_equivariant|part|dial|constraint|slim|slim_refs
#   python scripts/results/summarise.py
# Each stage is one Hydra multirun under outputs/results/<stage> (DIR=… to change; SEEDS=… and
# EXPERIMENTS=a,b to run some seeds or models); seeds vary slowest, so a cut-short stage still has every model at its first seeds.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
COMMON=(data=top_window logger=csv)
budget=trainer.max_epochs=8  # 32 batches of 256 per epoch: 256 optimiser steps at most
spectrum=++evaluation.spectrum_jets=2000  # derivatives cost LLoCa as much as training; ++: the
# sweep-level config (no experiment yet) is the toy's, whose evaluation has no such key
betas="[0.0,0.1,0.3,0.5,0.7,0.9]"  # the boost scan; the extrap and efficiency stages need less
stage=${1:?usage: top.sh table|extrap|alternatives|efficiency|equivariant|extrap_equivariant|part|dial|constraint|slim|slim_refs}
case $stage in
  table)        # SEAL against plain training and the exact rival on the same backbone
    runs=(+experiment=top_baseline,top_gsymm,top_dsymm,top_lloca) ;;
  alternatives) # the other rows of the table
    runs=(+experiment=top_augment,top_invariant,top_hybrid) ;;
  equivariant)  # the costly networks (LLoCa + references, PELICAN, L-GATr): 35 min a seed on CPU
    runs=(+experiment=top_lloca_beam,top_pelican,top_lgatr) ;;
  part)         # ParT (lloca's, CPU size) under every treatment, on the first 32 constituents as
    # L-GATr and PELICAN (its pair features cost N²: 1.6 s a step at 80 against 0.24 s at 32)
    # (TREATMENTS=a,b: some of them)
    runs=(+experiment=top model/backbone=part
          treatment=${TREATMENTS:-none,augment,gsymm,dsymm_fd,lloca,lloca_refs,lloca_refs_gsymm}
          data.n_constituents=32)
    spectrum=++evaluation.spectrum_jets=100 ;;  # the ParT table has no spectrum column
  dial)         # LLoCa-ParT + references + GSEAL at more λ: with the part stage's λ = 0 (lloca_refs),
    # λ = 1 (lloca_refs_gsymm) and exact (lloca), AUC and reference dependence from free to exact
    # (WEIGHTS=a,b: some of the λ)
    runs=(+experiment=top model/backbone=part treatment=lloca_refs_gsymm
          symmetry.weight=${WEIGHTS:-0.1,10,100} data.n_constituents=32)
    spectrum=++evaluation.spectrum_jets=100 ;;  # the dial has no spectrum column
  constraint)   # constrained SEAL: a target ε instead of λ (EXPERIMENTS=top_gsymm|top_dsymm,
    # TARGETS=a,b: the targets in spectrum units), against the table's hand-tuned λ rows
    runs=(+experiment=${EXPERIMENTS:-top_gsymm} +constraint=target
          symmetry.constraint.target=${TARGETS:-0.01}) ;;
  slim)         # L-GATr-slim (lgatr 2.0): exactly invariant without references
    runs=(+experiment=top model/backbone=lgatr_slim treatment=none data.n_constituents=32)
    spectrum=++evaluation.spectrum_jets=100 ;;
  slim_refs)    # L-GATr-slim + the references LLoCa uses (±z lightlike, time), plain and with GSEAL
    runs=(+experiment=top model/backbone=lgatr_slim treatment=none,gsymm data.n_constituents=32
          model.net.backbone.beam_reference=lightlike model.net.backbone.time_reference=true)
    spectrum=++evaluation.spectrum_jets=100 ;;
  extrap)       # train below 800 GeV, test above it (on the spare rows too): 25 min
    soft=top_baseline,top_gsymm,top_dsymm,top_augment
    runs=(+experiment=$soft,top_invariant,top_hybrid +extrap=pt800 "data.split=[0.16,0.04,0.8]")
    betas="[0.0,0.5]" ;;
  extrap_equivariant)  # the costly networks above 800 GeV (no spectrum: the table has none): 70 min
    runs=(+experiment=top_lloca,top_lloca_beam,top_pelican,top_lgatr +extrap=pt800
          "data.split=[0.16,0.04,0.8]")
    spectrum=++evaluation.spectrum_jets=100
    betas="[0.0,0.5]" ;;
  efficiency)   # test AUC against the number of training jets (8 000: the table's runs)
    # the table's optimiser budget (256 steps, early stopping) at every size: a fixed epoch
    # count would give 1 000 jets 32 steps and make every model look data-hungry
    runs=(+experiment=top_baseline,top_gsymm,top_lloca data.train_jets=1000,3000
          "data.split=[0.16,0.04,0.12]")  # 6 000 test jets: enough for the AUC
    # and the table's validation cadence: every 32 steps (one table epoch), not every epoch
    budget="trainer.max_epochs=-1 trainer.max_steps=256 trainer.check_val_every_n_epoch=null
            ++trainer.val_check_interval=32"
    spectrum=++evaluation.spectrum_jets=500
    betas="[0.0,0.5]" ;;
  *) echo "unknown stage $stage" >&2; exit 2 ;;
esac
if [ -n "${EXPERIMENTS:-}" ]; then  # a subset of the stage's named experiments
  if [ "${runs[0]}" = +experiment=top ]; then
    echo "EXPERIMENTS does not apply to stage $stage: its runs are backbone × treatment pairs" \
      "(run train.py with the stage's overrides for a subset)" >&2
    exit 2
  fi
  runs[0]=+experiment=$EXPERIMENTS
fi
seeds=${SEEDS:-0,1,2}
exec "$PY" train.py -m seed="$seeds" "${runs[@]}" "${COMMON[@]}" $budget "evaluation.betas=$betas" $spectrum \
  hydra.sweep.dir=outputs/results/"${DIR:-$stage}" ${EXTRA:-}

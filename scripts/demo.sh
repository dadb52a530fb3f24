#!/usr/bin/env bash
# The quickstart pipeline on an embedded tiny model and synthetic stand-in data (`make demo`;
# `make demo MODEL=tiny-qwen3-vl` for another family's tiny model, docs/MODELS.md):
#   data -> evaluate the base model on the SpatialTree hierarchy -> SFT (vision frozen) on the quickstart task
#   -> a short think-format SFT on engine RL prompts -> GRPO with hierarchy-aware auto-think rewards from it
#   -> evaluate again -> what each stage did (scripts/demo_summary.py) -> report.
# Everything runs on CPU in minutes. Stand-in data is synthetic: it tests the machinery, it is not
# the paper's data and its scores say nothing about the paper's numbers.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${DEMO_OUT:-demo_out}
MODEL=${MODEL:-tiny-qwen2.5-vl}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} WANDB_MODE=${WANDB_MODE:-offline} HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
STANDIN=$OUT/data/standin
QS=$OUT/data/quickstart
BENCH=(eval.bench=spatialtree_bench data.root=$STANDIN eval.max_samples_per_leaf=8 eval.max_new_tokens=48)
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
start=$(date +%s)

step "1/7 data: synthetic stand-ins for every registry source, and the quickstart's closer/farther task"
[ -f "$STANDIN/standin_manifest.json" ] || $PY launch/engine.py --standin "$STANDIN" --scale small
[ -d "$QS/distance_train" ] || $PY launch/quickstart_data.py "$QS"
$PY launch/data_report.py recipe=dist_size_corr model.name_or_path="$MODEL" data.root="$STANDIN" --report

step "2/7 evaluate the untrained tiny model on the stand-in SpatialTree-Bench"
$PY launch/evaluate.py model.name_or_path="$MODEL" "${BENCH[@]}" train.output_dir="$OUT/runs/0_base"

step "3/7 SFT (vision encoder frozen) on the quickstart task, with the benchmark hook before/during/after"
$PY launch/sft.py recipe=quickstart_sft model.name_or_path="$MODEL" data.root="$QS" train.output_dir="$OUT/sft"
$PY launch/curve.py "$OUT/sft"

step "4/7 think-format SFT for the RL stage: engine L1/L3 prompts, L3 always thinks, L1 half the time"
# SFT above answers one question with a bare letter: GRPO from it has nothing to shape and no room to learn
# (README, "What the GRPO stage shows"). This SFT teaches the <think>/<answer> format on 64 engine prompts;
# GRPO then trains on 16 other prompts of the same sources and is checked on the rest (train/quickstart_rl.py).
$PY launch/quickstart_rl.py "$STANDIN" "$OUT/think_sft" --model "$MODEL"

step "5/7 GRPO with auto-think rewards (L1 length penalty, L3 reasoning bonus) from the think-format SFT model"
# recipe quickstart_rl: quickstart_grpo on the 16 prompts, the held-out RL prompts evaluated at the start and
# the end with the training prompts' template.
$PY launch/grpo.py recipe=quickstart_rl model.name_or_path="$OUT/think_sft" data.root="$STANDIN" \
    train.output_dir="$OUT/grpo"

step "6/7 evaluate the SFT models and the GRPO model on the same hierarchy"
$PY launch/evaluate.py model.name_or_path="$OUT/sft" "${BENCH[@]}" train.output_dir="$OUT/runs/1_after_sft"
# The think-format models are asked with the template they were trained in (in the benchmark's wording they
# break off after "<answer>": 0 of 72 answers parsed) and have 64 new tokens, room for a think block.
THINK=(eval.max_new_tokens=64 'eval.prompt_template=${grpo.templates.auto_think}')
$PY launch/evaluate.py model.name_or_path="$OUT/think_sft" "${BENCH[@]}" "${THINK[@]}" train.output_dir="$OUT/runs/2_think_sft"
$PY launch/evaluate.py model.name_or_path="$OUT/grpo" "${BENCH[@]}" "${THINK[@]}" train.output_dir="$OUT/runs/3_after_grpo"
$PY launch/evaluate.py --compare "$OUT/runs/2_think_sft" "$OUT/runs/3_after_grpo"

step "7/7 what each stage did, and the report: table (markdown, CSV), figures and pages against the base model"
$PY scripts/demo_summary.py "$OUT"   # per-level start/end table, held-out and hierarchy intervals, learning_curves.png
$PY launch/report.py "$OUT" --baseline 0_base
$PY launch/report.py "$OUT/grpo"   # the GRPO run wrote its page at its end; rewritten here with everything since

cat <<DONE

Demo finished in $(( $(date +%s) - start )) s. Outputs:
  $OUT/data/                        stand-in data (synthetic; not the paper's data)
  $OUT/sft/                         SFT run: final model, metrics.jsonl, tensorboard/, eval/step_N/
  $OUT/think_sft/                   think-format SFT run (the GRPO stage's starting model)
  $OUT/grpo/                        GRPO run: final model, metrics.jsonl with train/L1/..., train/L3/... telemetry,
                                    eval/step_N/ (held-out RL prompts at the start and the end)
  $OUT/runs/*/eval/final/           hierarchy evaluations: summary.json, predictions.jsonl
  $OUT/report/                      table.md, table.csv, heatmap and correlation figures,
                                    learning_curves.png (SFT losses and held-out accuracy, GRPO reward per level and held-out accuracy)
  $OUT/report.html                  the four evaluations side by side (deltas, heatmap, learning curves), linking their pages
  $OUT/*/report.html                each run's page: curves, the hierarchy, evaluation samples with their
                                    images, GRPO rollouts (open it from disk in any browser)

The report (the four evaluations, the learning curves, links to the evaluations' pages):
DONE
realpath "$OUT/report.html"

#!/usr/bin/env bash
# Create or complete verl's own environment (verl 0.9.1 pins transformers<5.11 and omegaconf<2.4, so it cannot
# share .venv with the rest of SpatialTree-Train). Idempotent: a stamp records what was installed; an environment
# without the stamp, or in which one of the required modules does not import (e.g. an older .venv-verl made
# without torchvision / qwen-vl-utils / scipy), is completed in place.
#
#   VERL_VENV=.venv-verl (default)   where the environment goes
#   VERL_TORCH_SPEC="..."            torch (+ torchvision) for it. Default, x86_64: "torch==2.14.1 torchvision==0.29.1"
#                                    (a CUDA build that also runs on CPU; the only pair whose torchvision imports on a
#                                    machine without a GPU, see docs/GRPO.md); aarch64: "torch==2.9.1 torchvision==0.24.1".
#                                    On a GPU cluster use the torch your vLLM/SGLang wheel was built for, e.g.
#                                    VERL_TORCH_SPEC="torch==2.11.0 torchvision==0.26.0" (verl 0.9.1's own vllm extra).
#   VERL_EXTRAS=""                   extra pip requirements, e.g. "vllm==0.24.0" on GPU nodes (rollout engine)
#   VERL_FLASH_ATTN=auto             flash-attn for verl's actor: auto = install it when nvidia-smi lists a GPU,
#                                    1 = always, 0 = never. verl 0.9.1 defaults to flash_attention_2 and its Qwen2-VL
#                                    remove-padding patch imports flash_attn; without it launch/grpo.py writes
#                                    attn_implementation=sdpa and use_remove_padding=false into verl's config
#                                    (train/grpo/verl_backend.py looks flash_attn up in this environment).
#                                    Built against the torch above (pip install flash-attn --no-build-isolation: a
#                                    CUDA toolkit matching torch's is needed when no prebuilt wheel fits).
#
# What verl needs beyond its own requirements, and why:
#   torchvision     transformers' Qwen2.5-VL processor (its video processor) cannot be built without it, and verl's
#                   RLHFDataset refuses image prompts without a processor ("processor is needed to process
#                   multimodal data")
#   qwen-vl-utils   verl's RLHFDataset and agent loop read the images of a prompt with it (process_vision_info)
#   TransferQueue, cachetools, fastapi, uvicorn, mathruler
#                   verl 0.9.1's trainer entry (main_ppo.TaskRunnerV1.run and the trainer it builds) imports these;
#                   verl lists them only under its "verl-core" extra, whose GPU-side pins (torchcodec, nvtx) and test
#                   tools are left out here (tests/test_multinode_ray.py found them missing one by one)
#   scipy, pillow   rewards/ (loaded by file path by verl's reward manager): the L4 camera metrics need scipy's
#                   Rotation, affmask reads non-PNG / interlaced masks with Pillow (rewards/metrics/deps.py)
# The project's packages `rewards` and `data_mix` are not installed here: the verl config points at
# rewards/verl_reward.py by file path, and that module imports only numpy, scipy and Pillow.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VERL_VENV:-.venv-verl}
PY=${PYTHON:-python3}
case "$(uname -m)" in
  aarch64|arm64) DEFAULT_TORCH="torch==2.9.1 torchvision==0.24.1" ;;
  *) DEFAULT_TORCH="torch==2.14.1 torchvision==0.29.1" ;;
esac
TORCH_SPEC=${VERL_TORCH_SPEC:-$DEFAULT_TORCH}
VERL_SPEC=${VERL_SPEC:-verl==0.9.1}
NEEDED="qwen-vl-utils==0.0.14 TransferQueue==0.1.11 cachetools fastapi uvicorn mathruler scipy pillow pyarrow pandas"
# Every module the project's verl scripts and tests use; the environment is ready only when all of them import.
MODULES="verl torch torchvision transformers omegaconf hydra qwen_vl_utils transfer_queue cachetools fastapi uvicorn
mathruler scipy.spatial.transform PIL.Image pyarrow"
CHECK="import ${MODULES//[[:space:]]/, }
from transformers import Qwen2_5_VLProcessor
from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor"
# The fast path only looks the top-level packages up (importing torch + verl costs 10-40 s on 2 busy cores); the
# stamp is written after the full import check passed.
LOOKUP="import importlib.util as u, sys
sys.exit(0 if all(u.find_spec(m.split('.')[0]) for m in '$(echo $MODULES)'.split()) else 1)"
stamp="$VENV/.spatialtree-stamp"
case "${VERL_FLASH_ATTN:-auto}" in
  1) FLASH=1 ;;
  0) FLASH=0 ;;
  *) if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then FLASH=1; else FLASH=0; fi ;;
esac
if [ "$FLASH" = 1 ]; then
  MODULES="$MODULES flash_attn"
  LOOKUP="import importlib.util as u, sys
sys.exit(0 if all(u.find_spec(m.split('.')[0]) for m in '$(echo $MODULES)'.split()) else 1)"
fi
want=$( { cat "$0"; echo "$TORCH_SPEC|$VERL_SPEC|${VERL_EXTRAS:-}|flash=$FLASH"; } | sha256sum | cut -c1-16)

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VENV/bin/python" -c "$LOOKUP" 2>/dev/null; then
  echo "[verl-env] $VENV ready"
  exit 0
fi
start=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
  echo "[verl-env] creating $VENV with $($PY --version)"
  "$PY" -m venv "$VENV"
else
  echo "[verl-env] completing the existing $VENV (no stamp, another spec, or a module missing)"
fi
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@"; }
# torch first, on its own: verl's requirements (torchdata, tensordict, accelerate, peft) then resolve against it
# instead of pulling another (multi-GB) torch build.
echo "[verl-env] installing $TORCH_SPEC"
# shellcheck disable=SC2086
pip install -q $TORCH_SPEC
TORCH_PIN=$("$VENV/bin/python" -c 'import torch; print("torch==" + torch.__version__.split("+")[0])')
echo "[verl-env] installing $VERL_SPEC $NEEDED ${VERL_EXTRAS:-} (with $TORCH_PIN kept)"
# shellcheck disable=SC2086
pip install -q "$VERL_SPEC" "$TORCH_PIN" $NEEDED ${VERL_EXTRAS:-}
if [ "$FLASH" = 1 ]; then
  echo "[verl-env] installing flash-attn against $TORCH_PIN (VERL_FLASH_ATTN=${VERL_FLASH_ATTN:-auto})"
  pip install -q psutil ninja packaging wheel
  if ! pip install -q flash-attn --no-build-isolation; then
    echo "[verl-env] flash-attn did not install (no matching wheel, no CUDA toolkit to build it?); rerun with" \
         "VERL_FLASH_ATTN=0 and verl runs with sdpa (launch/grpo.py sets it)" >&2
    exit 1
  fi
  CHECK="$CHECK
import flash_attn"
fi
if ! "$VENV/bin/python" -c "$CHECK"; then
  echo "[verl-env] $VENV is still incomplete: the imports above failed" >&2
  exit 1
fi
echo "$want" > "$stamp"
"$VENV/bin/python" -c "import verl, torch, torchvision, transformers, omegaconf; print('[verl-env] ready: verl', \
verl.__version__, 'torch', torch.__version__, 'torchvision', torchvision.__version__, 'transformers', \
transformers.__version__, 'omegaconf', omegaconf.__version__)"
echo "[verl-env] took $(( $(date +%s) - start )) s; size $(du -sh "$VENV" | cut -f1)"

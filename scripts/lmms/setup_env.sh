#!/usr/bin/env bash
# Create or complete lmms-eval's own environment, .venv-lmms, layered on the project's .venv.
#
# lmms-eval 0.7.3 pins wandb==0.25.0 and av<16, which conflict with .venv (wandb 0.31, av 18); nothing on the
# path the spatialtreebench task and the qwen2_5_vl model take imports either of them. So instead of a second
# torch + transformers (GBs), .venv-lmms sees .venv's site-packages through a .pth file (torch, transformers,
# datasets, accelerate, qwen-vl-utils, opencv come from there) and holds only lmms-eval itself (--no-deps) and
# the light packages that path imports and .venv lacks:
#   loguru       every lmms-eval module logs with it
#   sacrebleu    lmms_eval.api.metrics (imported by the evaluator)
#   evaluate     lmms_eval.api.metrics
#   tenacity, sqlitedict, pytablewriter   lmms_eval.api.task / logging_utils (module level)
#   filelock<4   lmms_eval/evaluator.py patches filelock._api.FileLockMeta, which filelock 4 (in .venv) no longer
#                has; 3.32.7 here shadows it for lmms-eval only (datasets and huggingface_hub work with both)
#   decord       models/simple/qwen2_5_vl.py imports it at module level (it reads .mp4 visuals with it; the
#                spatialtreebench task hands it PIL frames read with OpenCV, so decord decodes nothing here)
# Idempotent: a stamp records what was installed; ~0.1 s when complete, ~40 s from nothing on this machine.
#
#   LMMS_VENV=.venv-lmms (default)   where the environment goes
#   BASE_VENV=.venv (default)        the environment it is layered on (must be complete: scripts/bootstrap.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${LMMS_VENV:-.venv-lmms}
BASE=${BASE_VENV:-.venv}
LMMS_SPEC="lmms-eval==0.7.3"
NEEDED="loguru==0.8.0 sacrebleu==2.6.0 evaluate==0.4.6 tenacity==9.2.1 sqlitedict==2.1.0 pytablewriter==1.2.1
filelock==3.32.7 decord==0.6.0"
# From .venv: checked, never installed here (installing them would shadow .venv's versions).
FROM_BASE="torch transformers datasets accelerate qwen_vl_utils cv2 PIL numpy"
CHECK="import lmms_eval.__main__, lmms_eval.models.simple.qwen2_5_vl, lmms_eval.tasks.spatialtreebench.utils"
stamp="$VENV/.spatialtree-stamp"
want=$( { cat "$0"; echo "$LMMS_SPEC|$(realpath "$BASE")"; } | sha256sum | cut -c1-16)

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
  echo "[lmms-env] $VENV ready"
  exit 0
fi
if [ ! -x "$BASE/bin/python" ]; then
  echo "[lmms-env] $BASE/bin/python not found: make the project environment first (bash scripts/bootstrap.sh)" >&2
  exit 1
fi
start=$(date +%s)
missing=$("$BASE/bin/python" -c "import importlib.util as u
print(' '.join(m for m in '$FROM_BASE'.split() if not u.find_spec(m)))")
if [ -n "$missing" ]; then
  echo "[lmms-env] $BASE lacks $missing (qwen_vl_utils and cv2 come with the dev extras: bash scripts/bootstrap.sh)" >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "[lmms-env] creating $VENV on $BASE's interpreter"
  "$BASE/bin/python" -m venv "$VENV"
fi
site=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
base_site=$("$BASE/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
realpath "$base_site" > "$site/_spatialtree_base.pth"   # after .venv-lmms's own packages on sys.path
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@"; }
echo "[lmms-env] installing $LMMS_SPEC (--no-deps) and: $(echo $NEEDED)"
# --ignore-installed: .venv may hold lmms-eval's files (the dev extras install them for the parity tests); this
# environment gets its own copy. pip's output goes to $VENV/pip.log; it lists lmms-eval's unmet pins (wandb, av and
# the packages of other tasks and models): expected, see above.
log="$VENV/pip.log"
# shellcheck disable=SC2086
if ! { pip install -q --no-deps --ignore-installed "$LMMS_SPEC" && pip install -q $NEEDED; } >"$log" 2>&1; then
  tail -20 "$log" >&2
  echo "[lmms-env] pip failed; its output: $log" >&2
  exit 1
fi
if ! "$VENV/bin/python" -c "$CHECK"; then
  echo "[lmms-env] $VENV is still incomplete: the imports above failed" >&2
  exit 1
fi
echo "$want" > "$stamp"
echo "[lmms-env] ready: $("$VENV/bin/python" -c "import lmms_eval, importlib.metadata as m, torch, transformers
print('lmms-eval', m.version('lmms-eval'), 'from', lmms_eval.__file__.rsplit('/', 2)[0], '| torch', torch.__version__,
      'transformers', transformers.__version__)") (took $(( $(date +%s) - start )) s)"

#!/usr/bin/env bash
# GPU benchmark, one prepared script (issue 15): installs what the machine lacks, then runs bench/gpu.py within 9 minutes.
#   bash bench/gpu.sh [--out DIR] [--steps 30] ...
# Needs python3 with torch (CUDA), timm, numpy, pandas, pillow. faiss-cpu, fastcore and pillow-heif come from wheels
# in .whl/ when the machine has no package registry (download them beforehand, see ARCHITECTURE.md), else from PyPI.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
missing=$($PY -c "import importlib.util as u; print(' '.join(p for p, m in [('faiss-cpu', 'faiss'), ('fastcore==1.14.5', 'fastcore'), ('pillow-heif', 'pillow_heif')] if u.find_spec(m) is None))")
if [ -n "$missing" ]; then
  echo "installing: $missing"
  if compgen -G ".whl/*.whl" >/dev/null; then
    $PY -m pip install -q --no-index --no-deps --no-compile --target /tmp/simsop-site .whl/*.whl
    export PYTHONPATH=/tmp/simsop-site
  else $PY -m pip install -q $missing; fi
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$PWD" PYTHONUNBUFFERED=1   # simsop from this checkout
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
timeout 540 $PY bench/gpu.py "$@"

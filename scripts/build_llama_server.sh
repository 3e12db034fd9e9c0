#!/usr/bin/env bash
# Builds llama.cpp's own server (`llama-server`) from the llama.cpp sources that the llama-cpp-python sdist vendors,
# so the server and the in-process engine run the same llama.cpp. The remote engine's tests start it; users who
# want to try the remote engine without vLLM can too. The binary is kept in the user cache, keyed by version, so a
# second run (or a second checkout) only copies it.
#   usage: scripts/build_llama_server.sh VENV PORTABLE_CMAKE_ARGS
set -euo pipefail
VENV="$1"
CMAKE_ARGS_PORTABLE="$2"
VERSION=0.3.36
CACHE="${ALIGNBEAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/alignbeam}/llama-server-$VERSION"
if [ ! -x "$CACHE/llama-server" ]; then
    echo "==> llama-server from llama-cpp-python $VERSION's llama.cpp sources (4-8 minutes the first time)"
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    # the registry sometimes stalls: pip's own retries, then up to three whole attempts
    for attempt in 1 2 3; do
        "$VENV/bin/python" -m pip --disable-pip-version-check download -q --timeout 60 --retries 8 --no-deps \
            --no-binary :all: "llama-cpp-python==$VERSION" -d "$work" && break
        [ "$attempt" -eq 3 ] && { echo "==> the llama-cpp-python sources could not be downloaded: check the network" >&2; exit 1; }
        echo "==> download failed (attempt $attempt of 3); retrying in $((attempt * 30)) s"; sleep $((attempt * 30))
    done
    tar xzf "$work/llama_cpp_python-$VERSION.tar.gz" -C "$work"
    src="$work/llama_cpp_python-$VERSION/vendor/llama.cpp"
    # shellcheck disable=SC2086 # the portable flags are several words on purpose
    cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF \
        -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
        -DLLAMA_OPENSSL=OFF $CMAKE_ARGS_PORTABLE >"$work/configure.log" 2>&1 ||
        { tail -30 "$work/configure.log"; exit 1; }
    cmake --build "$work/build" --target llama-server -j "$(nproc)" >"$work/build.log" 2>&1 ||
        { tail -30 "$work/build.log"; exit 1; }
    mkdir -p "$CACHE"
    cp "$work/build/bin/llama-server" "$CACHE/llama-server.tmp"
    mv "$CACHE/llama-server.tmp" "$CACHE/llama-server"
fi
cp "$CACHE/llama-server" "$VENV/bin/llama-server"

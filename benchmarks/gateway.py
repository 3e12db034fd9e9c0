"""The gateway install against the full one (#36): install time and size, import time, and `alignbeam serve`'s
start-up time and resident memory with every model a URL of a real llama-server.

    python benchmarks/gateway.py                       # both installs, fresh virtual environments in a temp folder
    python benchmarks/gateway.py --skip-install --slim /tmp/slim/bin/python --full .venv/bin/python

Installs use pip's cache as it is (warm on a machine that ran scripts/install.sh: llama-cpp-python's wheel built
once, torch downloaded once); the cold-cache full install is the issue's 14 min 47 s. The serve figures: the time
from starting the process to /health answering 200 (imports, connecting, loading both tokenizers), and the
process's RSS then and after 8 requests. Run under `flock /tmp/model.lock` (it starts llama-servers). Prints the
figures; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.slim.check_gateway import free_port, llama_server, start  # noqa: E402

#: what scripts/install.sh pins, so the full install resolves to the same packages
FULL_PINS = ["torch==2.13.0", "llama-cpp-python==0.3.36"]


def install(venv: Path, spec: list[str]) -> dict:
    """A fresh virtual environment with `pip install SPEC`: seconds and megabytes."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin/python"), "-m", "pip", "--disable-pip-version-check", "install", "-q", *spec]
    subprocess.run(pip, check=True, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file() and not f.is_symlink())
    return {"install_s": round(seconds, 1), "size_mb": round(size / 1e6)}


def import_time(python: str, runs: int = 5) -> float:
    """Median wall seconds of a process that imports the command line (what `alignbeam` starts with)."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([python, "-c", "import alignbeam.cli"], check=True)
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 3)


def serve_figures(python: str, draft_url: str, anchor_url: str, tmp: Path) -> dict:
    """Start-up seconds and RSS of `alignbeam serve` on the two remote models, idle and after 8 requests."""
    port = free_port()
    argv = [python, "-m", "alignbeam.cli", "serve", "--port", str(port), "--draft", draft_url]
    argv += ["--anchor", anchor_url, "--judge", "anchor", "-K", "2"]
    t0 = time.perf_counter()
    proc = start(argv, tmp / f"serve-{port}.log", f"http://127.0.0.1:{port}/health")
    ready = time.perf_counter() - t0
    try:
        rss_idle = psutil.Process(proc.pid).memory_info().rss
        body = {"model": "alignbeam", "messages": [{"role": "user", "content": "What is 2+2?"}], "max_tokens": 8}
        for _ in range(8):
            httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=300).raise_for_status()
        rss_busy = psutil.Process(proc.pid).memory_info().rss
        libs = Path(f"/proc/{proc.pid}/maps").read_text()
    finally:
        proc.kill()
        proc.wait(10)
    return {
        "serve_ready_s": round(ready, 2),
        "rss_idle_mb": round(rss_idle / 1e6),
        "rss_after_8_mb": round(rss_busy / 1e6),
        "maps_libtorch_or_libllama": "libtorch" in libs or "libllama" in libs,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-install", action="store_true", help="measure the environments given below instead")
    ap.add_argument("--slim", help="python of a gateway install (default: a fresh one)")
    ap.add_argument("--full", help="python of a full install (default: a fresh one)")
    ap.add_argument("--llama-server", default=str(ROOT / ".venv/bin/llama-server"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="alignbeam-gateway-"))
    out: dict = {"slim": {}, "full": {}}
    try:
        pythons = {"slim": args.slim, "full": args.full}
        if not args.skip_install:
            out["slim"] |= install(tmp / "slim", [str(ROOT)])
            out["full"] |= install(tmp / "full", [f"{ROOT}[all]", *FULL_PINS])
            pythons = {k: v or str(tmp / k / "bin/python") for k, v in pythons.items()}
        for kind, python in pythons.items():
            if python:
                out[kind]["import_s"] = import_time(python)
        draft, draft_url = llama_server(args.llama_server, "smollm2-135m", tmp)
        anchor, anchor_url = llama_server(args.llama_server, "qwen2.5-coder-1.5b", tmp)
        try:
            for kind, python in pythons.items():
                if python:
                    out[kind] |= serve_figures(python, draft_url, anchor_url, tmp)
        finally:
            for p in (draft, anchor):
                p.kill()
                p.wait(10)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for kind, figures in out.items():
        print(kind, " ".join(f"{k}={v}" for k, v in figures.items()))
    print(json.dumps(out))


if __name__ == "__main__":
    main()

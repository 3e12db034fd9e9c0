"""Shared fixtures. Integration tests use the real embedded models (installed by scripts/install.sh)."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from alignbeam import store

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def require_embedded(name: str) -> None:
    """Integration tests fail (not skip) without the models: CI must never pass by testing nothing."""
    m = store.EMBEDDED[name]
    if not m.is_ready():
        store.assemble(m)


@pytest.fixture(scope="session")
def smollm2_tokenizer_folder() -> Path:
    """A real tokenizer (SmolLM2's, converted from its GGUF once) for tests on tiny locally built models."""
    from alignbeam.engines.hf import converted_folder
    from alignbeam.store import resolve

    require_embedded("smollm2-135m")
    import torch

    return converted_folder(resolve("smollm2-135m"), torch.float32)


def build_tiny_llama(tokenizer_folder: Path, n_ctx: int):  # type: ignore[no-untyped-def]
    """A tiny random Llama (2 layers, width 32) with SmolLM2's real tokenizer and chat template (logic tests)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from alignbeam.engines.hf import HFModel

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(tokenizer_folder)
    cfg = LlamaConfig(
        vocab_size=49152,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max(256, n_ctx),
    )
    return HFModel(LlamaForCausalLM(cfg), tok, "tiny", "local", n_ctx=n_ctx)


@pytest.fixture(scope="session")
def tiny_llama(smollm2_tokenizer_folder: Path):  # type: ignore[no-untyped-def]
    return build_tiny_llama(smollm2_tokenizer_folder, 1024)


def llama_server_binary() -> Path:
    """llama.cpp's server as scripts/install.sh builds it (into the virtual environment's bin); the remote engine's
    integration tests fail without it, for the same reason as without the models."""
    import shutil
    import sys

    found = Path(sys.executable).parent / "llama-server"
    if found.is_file():
        return found
    on_path = shutil.which("llama-server")
    if on_path is None:
        raise RuntimeError("llama-server is missing: run scripts/install.sh (it builds it)")
    return Path(on_path)


class LlamaServer:
    """A real `llama-server` on 127.0.0.1 serving one embedded model: start(), stop(), restart(), url."""

    def __init__(self, model: str, parallel: int = 8, ctx: int = 8192) -> None:
        import socket

        require_embedded(model)
        self.model = model
        self.path = store.resolve(model).path
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.args = [
            str(llama_server_binary()),
            "-m", self.path, "--host", "127.0.0.1", "--port", str(self.port),
            "-np", str(parallel), "-c", str(ctx), "-t", "1", "-tb", "1", "--metrics", "--no-warmup",
        ]  # fmt: skip
        self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}#{self.model}"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> LlamaServer:
        import subprocess
        import tempfile
        import time

        import httpx

        # the log goes to a file: a pipe nobody reads fills up and blocks the server mid-request
        fd, self.log = tempfile.mkstemp(prefix=f"llama-server-{self.model}-", suffix=".log")
        self.proc = subprocess.Popen(self.args, stdout=fd, stderr=subprocess.STDOUT)
        os.close(fd)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama-server exited: {Path(self.log).read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.base}/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama-server did not become healthy in {timeout:g} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None
        if getattr(self, "log", None):
            Path(self.log).unlink(missing_ok=True)

    def restart(self) -> None:
        self.stop()
        self.start()


class FaultProxy:
    """A pass-through HTTP proxy in front of a real server that can be told to fail: `mode` is "pass", "500"
    (answer 500 with an error body), "hang" (hold the request without answering) or "garbage" (200 with a body
    that is not JSON). Faults a real server cannot be asked to produce on demand, injected on the real traffic."""

    def __init__(self, target: str) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import httpx

        proxy = self
        self.mode = "pass"
        self.release = threading.Event()
        self.seen = 0

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _relay(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.seen += 1
                mode = proxy.mode
                if mode == "hang":
                    proxy.release.wait(60)
                    return
                if mode in ("500", "garbage"):
                    out = b'{"error":{"code":500,"message":"injected failure","type":"server_error"}}'
                    status = 500 if mode == "500" else 200
                    self._send(status, b"<html>not json" if mode == "garbage" else out)
                    return
                headers = {"Content-Type": "application/json"}
                r = httpx.request(method, target + self.path, content=body, headers=headers, timeout=120)
                self._send(r.status_code, r.content)

            def _send(self, status: int, content: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def do_GET(self) -> None:
                self._relay("GET")

            def do_POST(self) -> None:
                self._relay("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


SERVER_KEY = "test-key"
SERVER_LIMIT = 64


def cross_pair_server():  # type: ignore[no-untyped-def]
    """The real server on the embedded cross pair (paper defaults), auth on, max_tokens <= 64, queue <= 4: what
    the server integration tests run against. A context manager yielding the BackgroundServer."""
    from alignbeam import AlignBeam
    from alignbeam.server import BackgroundServer, create_app

    for name in ("smollm2-135m", "qwen2.5-coder-1.5b"):
        require_embedded(name)
    ab = AlignBeam(draft="smollm2-135m", anchor="qwen2.5-coder-1.5b", preset="paper")
    return BackgroundServer(create_app(ab, api_key=SERVER_KEY, max_tokens_limit=SERVER_LIMIT, max_queue=4))


def flip_bytes(path: Path, offset: int, n: int) -> None:
    """Damage a file in place: invert `n` bytes from `offset` (corrupted-weights tests)."""
    with open(path, "r+b") as f:
        f.seek(offset)
        data = f.read(n)
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in data))


def free_port() -> int:
    """A port nothing listens on now, for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_up(url: str, proc: subprocess.Popen, timeout: float, what: str) -> None:
    """Until `url`/health answers 200; a server that exits first fails the test with its stderr."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{what} did not come up"
        time.sleep(0.3)

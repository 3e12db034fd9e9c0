"""Any transformers causal LM (local folder, hub id, or a GGUF file through `gguf_file`), CPU or GPU.

Each session owns a `DynamicCache` of batch size 1. `step` runs several sessions as one forward pass: their
caches are left-padded to a common length, stacked along the batch axis, masked with a 2-D attention mask and
given explicit position ids (what `generate()` does for left-padded batches), then split back. Copying the
caches costs far less than the forward pass for the short sequences AlignBeam steps together.

GGUF weights are dequantized on every load (tens of seconds for 1.5B parameters), so the first load saves a
safetensors copy in the user cache and later loads read that (about 10x faster).
"""

from __future__ import annotations

import inspect
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from alignbeam.engines import chat
from alignbeam.engines.base import Message, ModelInfo, Session, Snapshot, Tokenizer
from alignbeam.engines.local import LocalModel, LocalSession
from alignbeam.errors import ModelLoadError
from alignbeam.paths import cache_dir
from alignbeam.store import ResolvedModel


class HFTokenizer(Tokenizer):
    def __init__(self, tok, vocab_size: int, generation_eos: Sequence[int] = ()) -> None:
        self._tok = tok
        self.vocab_size = vocab_size
        self.bos_id = tok.bos_token_id
        probe = tok("a", add_special_tokens=True)["input_ids"]
        self.add_bos = self.bos_id is not None and bool(probe) and probe[0] == self.bos_id
        vocab = tok.get_vocab()
        special = set(tok.all_special_ids)
        for tid, added in getattr(tok, "added_tokens_decoder", {}).items():
            if getattr(added, "special", False):
                special.add(int(tid))
        eog = {i for i in generation_eos if i is not None}
        if tok.eos_token_id is not None:
            eog.add(tok.eos_token_id)
        for marker in ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|endoftext|>"):
            if marker in vocab and vocab[marker] in special:
                eog.add(vocab[marker])
        self.eog_ids = frozenset(eog)
        self._special = frozenset(special | eog)
        for marker in ("<|im_end|>", "<end_of_turn>", "<|eot_id|>"):
            if marker in vocab:
                self.eot_id = vocab[marker]
                break
        else:
            self.eot_id = tok.eos_token_id
        self._texts: list[str] | None = None

    @property
    def hf(self):
        return self._tok

    def encode(self, text: str, parse_special: bool = False) -> list[int]:
        return list(self._tok(text, add_special_tokens=False, split_special_tokens=not parse_special)["input_ids"])

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        if not texts:
            return []
        out = self._tok(list(texts), add_special_tokens=False, split_special_tokens=True)["input_ids"]
        return [list(x) for x in out]

    def decode(self, ids: Sequence[int]) -> str:
        return self._tok.decode([int(i) for i in ids if int(i) not in self._special], skip_special_tokens=True)

    def token_texts(self) -> list[str]:
        if self._texts is None:
            n = len(self._tok)
            texts = self._tok.batch_decode([[i] for i in range(n)], skip_special_tokens=False)
            texts = ["" if i in self._special else t for i, t in enumerate(texts)]
            self._texts = texts + [""] * max(0, self.vocab_size - n)
        return self._texts

    def special_ids(self) -> frozenset[int]:
        return self._special

    def render_chat(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
        messages = chat.validate_messages(messages)
        if self._tok.chat_template:
            return self._tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
        has_chatml = "<|im_start|>" in self._tok.get_vocab()
        return chat.render(chat.CHATML if has_chatml else chat.PLAIN, messages, add_generation_prompt)


class HFSession(LocalSession):
    """A transformers session: its own `DynamicCache` of batch size 1."""

    model: HFModel

    def __init__(self, model: HFModel) -> None:
        super().__init__(model)
        self.cache = model.new_cache()

    def fork(self) -> HFSession:
        self.check_open()
        child = HFSession(self.model)
        child.tokens = list(self.tokens)
        child.next_logits = self.next_logits
        for li, layer in enumerate(self.cache.layers):
            if layer.is_initialized:
                child.cache.update(layer.keys.clone(), layer.values.clone(), li)
        return child

    def drop_kv(self, n: int) -> None:
        if n == 0:
            self.cache = self.model.new_cache()
        else:
            self.cache.crop(n - len(self.tokens))

    def close(self) -> None:
        self.closed = True
        self.cache = None


class HFModel(LocalModel[HFSession]):
    def __init__(self, model, tokenizer, name: str, path: str, n_ctx: int | None = None) -> None:
        import torch

        self._torch = torch
        self.hf_model = model.eval()
        # transformers renamed `past_key_values` to `cache` during 5.x; use whichever this version takes.
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self.device = next(model.parameters()).device
        gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        gen_eos = gen_eos if isinstance(gen_eos, list) else [gen_eos]
        self.tokenizer = HFTokenizer(tokenizer, int(model.config.get_text_config().vocab_size), gen_eos)
        max_pos = getattr(model.config.get_text_config(), "max_position_embeddings", None) or 4096
        self.info = ModelInfo(
            name=name,
            engine="hf",
            path=path,
            n_ctx=min(n_ctx or 4096, int(max_pos)),
            n_params=sum(p.numel() for p in model.parameters()),
        )

    def new_cache(self):
        """An empty KV cache for one session."""
        from transformers import DynamicCache

        # No config on purpose: full (not sliding-window) layers, so any prefix can be cropped back to.
        return DynamicCache()

    def new_session(self) -> HFSession:
        return HFSession(self)

    def snapshot(self, session: Session) -> Snapshot:
        """A fork kept aside: transformers sessions hold no fixed slot, so the copy is a session itself."""
        assert isinstance(session, HFSession)
        session.logits()
        return Snapshot(list(session.tokens), session.fork())

    def restore(self, snap: Snapshot) -> HFSession:
        if not isinstance(snap.state, HFSession):
            return self.session(snap.tokens)
        return snap.state.fork()

    def step(self, sessions: Sequence[Session], tokens: Sequence[Sequence[int]]) -> None:
        groups: dict[int, list[tuple[HFSession, list[int]]]] = {}
        for s, t in self.step_work(sessions, tokens):
            groups.setdefault(len(t), []).append((s, t))
        with self._torch.inference_mode():
            for group in groups.values():
                if len(group) == 1:
                    self._forward_one(*group[0])
                else:
                    self._forward_batch(group)

    def _forward_one(self, s: HFSession, toks: list[int]) -> None:
        torch = self._torch
        past = len(s.tokens)
        ids = torch.tensor([toks], device=self.device)
        pos = torch.arange(past, past + len(toks), device=self.device)[None]
        kw = {self._cache_kw: s.cache}
        out = self.hf_model(input_ids=ids, use_cache=True, position_ids=pos, logits_to_keep=1, **kw)
        s.cache = getattr(out, self._cache_kw)
        s.fed(toks, out.logits[0, -1].float().cpu().numpy())

    def _forward_batch(self, group: list[tuple[HFSession, list[int]]]) -> None:
        from transformers import DynamicCache

        torch = self._torch
        lens = [len(s.tokens) for s, _ in group]
        lmax = max(lens)
        t = len(group[0][1])
        batch_cache = DynamicCache()
        n_layers = len(group[0][0].cache.layers) if lmax else 0
        for li in range(n_layers):
            ks, vs = [], []
            for s, _ in group:
                layer = s.cache.layers[li]
                k, v = layer.keys, layer.values
                pad = lmax - k.shape[-2]
                if pad:
                    k = torch.nn.functional.pad(k, (0, 0, pad, 0))
                    v = torch.nn.functional.pad(v, (0, 0, pad, 0))
                ks.append(k)
                vs.append(v)
            batch_cache.update(torch.cat(ks), torch.cat(vs), li)
        mask = torch.zeros((len(group), lmax + t), dtype=torch.long, device=self.device)
        for i, n in enumerate(lens):
            mask[i, lmax - n :] = 1
        ids = torch.tensor([toks for _, toks in group], device=self.device)
        pos = torch.tensor([[n + j for j in range(t)] for n in lens], device=self.device)
        out = self.hf_model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=pos,
            use_cache=True,
            logits_to_keep=1,
            **{self._cache_kw: batch_cache if lmax else None},
        )
        logits = out.logits[:, -1].float().cpu().numpy()
        new_cache = getattr(out, self._cache_kw)
        for i, ((s, toks), n) in enumerate(zip(group, lens, strict=True)):
            fresh = self.new_cache()
            for li, layer in enumerate(new_cache.layers):
                k = layer.keys[i : i + 1, :, lmax - n :, :].contiguous()
                v = layer.values[i : i + 1, :, lmax - n :, :].contiguous()
                fresh.update(k, v, li)
            s.cache = fresh
            s.fed(toks, logits[i].copy())


def _torch_dtype(dtype: str, device: str):
    import torch

    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    try:
        return {
            "float32": torch.float32,
            "fp32": torch.float32,
            "bfloat16": torch.bfloat16,
            "bf16": torch.bfloat16,
            "float16": torch.float16,
            "fp16": torch.float16,
        }[dtype]
    except KeyError:
        raise ModelLoadError(f"unknown dtype '{dtype}': use auto, float32, bfloat16 or float16") from None


def _pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError("device 'cuda' was asked for but torch sees no GPU: use --device cpu")
    return device


def load_hf(resolved: ResolvedModel, dtype: str = "auto", device: str = "auto", n_ctx: int | None = None) -> HFModel:
    """Load with transformers; GGUF files are converted once to a cached safetensors folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    if not os.environ.get("ALIGNBEAM_VERBOSE"):
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    dev = _pick_device(device)
    tdtype = _torch_dtype(dtype, dev)
    source = resolved.path
    try:
        if resolved.is_gguf:
            source = str(converted_folder(resolved, tdtype))
        tok = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=tdtype)
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"transformers could not load '{resolved.spec}': {e}") from e
    model.to(dev)
    return HFModel(model, tok, resolved.name, resolved.path, n_ctx)


def converted_folder(resolved: ResolvedModel, tdtype) -> Path:
    """A safetensors copy of a GGUF file in the user cache, made on first use: transformers dequantizes GGUF weights
    on every load (tens of seconds for 1.5B parameters), while the copy loads about 10x faster."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = Path(resolved.path)
    key = f"{src.stem}-{src.stat().st_size}-{str(tdtype).removeprefix('torch.')}"
    target = cache_dir() / "hf" / key
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=target.parent))
    try:
        model = AutoModelForCausalLM.from_pretrained(str(src.parent), gguf_file=src.name, dtype=tdtype)
        tok = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
        # The GGUF quantizer stays attached after dequantizing and makes save_pretrained refuse; detach it.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        with torch.no_grad():
            model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        os.replace(tmp, target) if not target.exists() else shutil.rmtree(tmp)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_hf_tokenizer(resolved: ResolvedModel) -> HFTokenizer:
    """A Hugging Face model's tokenizer and chat template without its weights (the remote engine's local half).
    The vocabulary size and end-of-generation ids come from its config files when they are there."""
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    try:
        tok = AutoTokenizer.from_pretrained(resolved.path)
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"transformers could not load the tokenizer of '{resolved.spec}': {e}") from e
    vocab = len(tok)
    gen_eos: list[int] = []
    try:
        vocab = max(vocab, int(AutoConfig.from_pretrained(resolved.path).get_text_config().vocab_size))
        eos = GenerationConfig.from_pretrained(resolved.path).eos_token_id
        gen_eos = eos if isinstance(eos, list) else [eos]
    except (OSError, ValueError):
        pass  # a tokenizer-only folder: the tokenizer's own size and end-of-sequence token
    return HFTokenizer(tok, vocab, gen_eos)

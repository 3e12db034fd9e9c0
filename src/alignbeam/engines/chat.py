"""Chat templates rendered the way Hugging Face renders them (sandboxed Jinja2), for engines without one.

GGUF files carry their chat template as metadata; rendering it with the same environment settings as
transformers' `apply_chat_template` keeps prompts identical across engines, which the cross-engine agreement
tests depend on.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from alignbeam.errors import AlignBeamError

#: used when a model ships no template (base models): plain ChatML, which every model here was trained near
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

#: for base models without special chat tokens: a plain transcript
PLAIN = (
    "{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + '\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\n' }}"
    "{% else %}{{ 'Assistant: ' + message['content'] + '\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


def _raise(msg: str) -> None:
    raise jinja2.exceptions.TemplateError(msg)


@lru_cache(maxsize=32)
def _compile(template: str) -> jinja2.Template:
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda x, indent=None, **_: __import__("json").dumps(x, indent=indent, ensure_ascii=False)
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(template)


def render(
    template: str,
    messages: Sequence[dict[str, str]],
    add_generation_prompt: bool = True,
    bos_token: str = "",
    eos_token: str = "",
) -> str:
    try:
        return _compile(template).render(
            messages=list(messages),
            add_generation_prompt=add_generation_prompt,
            bos_token=bos_token,
            eos_token=eos_token,
            tools=None,
        )
    except jinja2.exceptions.TemplateError as e:
        raise AlignBeamError(f"the model's chat template rejected the conversation: {e}") from e


def validate_messages(messages: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """Checks the conversation shape once, so every engine reports the same clear error: at least one user
    message, roles system / user / assistant, string contents."""
    if not messages:
        raise AlignBeamError("the conversation is empty: pass a prompt or at least one user message")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise AlignBeamError(f"message {i} must be a dict with 'role' and 'content', got {m!r}")
        if m["role"] not in ("system", "user", "assistant"):
            raise AlignBeamError(f"message {i} has role {m['role']!r}; use 'system', 'user' or 'assistant'")
        if not isinstance(m["content"], str):
            raise AlignBeamError(f"message {i} content must be a string")
        out.append({"role": m["role"], "content": m["content"]})
    if not any(m["role"] == "user" for m in out):
        # the rule the empty-conversation error states: system or assistant turns alone give no request to answer
        # (nor one for the judge and the gate to read)
        raise AlignBeamError("the conversation has no user message: send at least one message with role 'user'")
    return out


def render_for(
    tok: Any, messages: Sequence[dict[str, str]], add_generation_prompt: bool, bos_text: str, eos_text: str
) -> str:
    """A GGUF tokenizer's conversation: its own chat template, or, without one, ChatML where the vocabulary has the
    ChatML markup as one token and plain turns otherwise (the llama.cpp and the slim tokenizer read alike)."""
    messages = validate_messages(messages)
    template = tok.chat_template
    if template is None:
        has_chatml = len(tok.encode("<|im_start|>", parse_special=True)) == 1
        template = CHATML if has_chatml else PLAIN
    return render(template, messages, add_generation_prompt, bos_text, eos_text)

import pytest

from alignbeam.engines import chat
from alignbeam.errors import AlignBeamError


def test_chatml_render() -> None:
    out = chat.render(chat.CHATML, [{"role": "user", "content": "hi"}])
    assert out == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([], "empty"),
        ([{"role": "robot", "content": "x"}], "role"),
        ([{"role": "user"}], "'role' and 'content'"),
        ([{"role": "user", "content": 3}], "string"),
    ],
)
def test_bad_conversations_are_explained(messages: list, match: str) -> None:
    with pytest.raises(AlignBeamError, match=match):
        chat.validate_messages(messages)


def test_template_errors_become_alignbeam_errors() -> None:
    with pytest.raises(AlignBeamError, match="rejected"):
        chat.render("{{ raise_exception('no system role') }}", [{"role": "user", "content": "x"}])

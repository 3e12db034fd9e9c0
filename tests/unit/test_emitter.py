"""Streaming deltas never need to be taken back: partial characters and possible stop strings are held."""

from alignbeam.method.emitter import Emitter


def _decode_bytes(chunks: list[bytes]):
    return lambda ids: b"".join(chunks[i] for i in ids).decode("utf-8", errors="replace")


def test_holds_back_partial_utf8_and_finishes_with_final_text() -> None:
    chunks = [b"caf", b"\xc3", b"\xa9", b" ok"]
    e = Emitter(_decode_bytes(chunks), ())
    out = []
    for n in range(1, 5):
        out += list(e.feed(list(range(n))))
    assert out == ["caf", "\u00e9", " ok"]
    assert list(e.feed([0, 1, 2, 3], final_text="café ok")) == []


def test_stop_string_is_never_streamed() -> None:
    chunks = [b"ab", b"c#", b"##", b"tail"]
    e = Emitter(_decode_bytes(chunks), ("###",))
    out = []
    for n in range(1, 5):
        out += list(e.feed(list(range(n))))
    out += list(e.feed([0, 1, 2, 3], final_text="abc"))
    assert "".join(out) == "abc"


def test_hold_relapse_streams_answers_after_their_first_sentence_and_refusals_only_whole() -> None:
    answer = [b"Sure", b", here it is.", b" Step one", b" is easy."]
    e = Emitter(_decode_bytes(answer), (), hold_relapse=True)
    firsts = [list(e.feed(list(range(n)))) for n in range(1, 5)]
    assert firsts[0] == [] and firsts[1] == ["Sure, here it is."] and firsts[2] == [" Step one"]
    relapse = [b"I'm sorry, but I can't", b" do that.", b" However, I can provide", b" you with a guide: 1."]
    e = Emitter(_decode_bytes(relapse), (), hold_relapse=True)
    assert [d for n in range(1, 5) for d in e.feed(list(range(n)))] == []  # a refusal may still be cut
    assert list(e.feed([0, 1], final_text="I'm sorry, but I can't do that.")) == ["I'm sorry, but I can't do that."]

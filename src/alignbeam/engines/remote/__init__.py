"""The remote engine: a model that runs on a serving engine (llama.cpp's server, vLLM, SGLang), behind the same
`Model` interface as the in-process engines, so the method never knows where a model runs.

A model is named by URL: `http://gpu-1:8000/v1#specialist` is the model the server calls "specialist";
`...#specialist@/models/specialist-hf` also says where its tokenizer is (an embedded name, a .gguf file, a
Hugging Face folder or id; by default the served name itself). Options go in the query string:
`?protocol=llama-server|vllm|sglang` (default: detected), `top_logprobs=64`, `timeout=60`, `retries=3`,
`n_ctx=4096`, `named=1` (0: never ask for named tokens' log-probabilities), `connections=64` (the most requests
this process has in flight at this server at once, streams included; more wait for a free connection).

What stays local: the tokenizer and the chat template (the prompt is rendered and tokenized here, the bridge
table is built from the same token texts as with a local model). What goes over the wire: a session is only its
token list; `logits()` asks the server for the top `top_logprobs` next tokens after that list. The server's
prefix cache makes each request a one-token extension of what it already holds. `step()` sends the next
request of every session in one batched request per server and does not wait for the answer, so the draft's and
the anchor's requests of a mixed step are in flight at the same time.

The continuation after the mixed prefix is not stepped token by token: `decoder()` opens one ordinary streamed
completion per beam (all at once, so the server batches them), reads the generated token ids as they arrive, and
closes a beam's stream as soon as the method has what it needs (a stop string, a relapse cut, the judge chose
another beam). A stream that breaks off is resumed from the tokens already received. llama-server does not stream
the id of a token that ends inside a UTF-8 character (its chunks say how many tokens it has generated, so the gap
shows): the decoder then asks for the missing tokens without streaming and streams on from there.

Top-n instead of the full vocabulary: a token outside the returned list gets a log-probability 20 nats below the
last returned one, so the mixture is, in effect, over the union of the draft's and the anchor's top lists,
renormalised (UniTE's choice), and sampling never lands outside the returned list. Where the server can name
tokens (vLLM >= 0.26, SGLang), `ensure()` asks, in one more batched request, for the draft's exact probability of
the translated anchor tokens that its top list lacks; a server that ignores or refuses the request is asked no
more (one warning), and the floor stays. The anchor's translation is
exact when `top_b` <= `top_logprobs`. Read-outs that need every logit (the request probe) are not available on a
remote model: `full_vocabulary` is False, and the judge says so (docs/deployment.md).

Failures: an unreachable backend or a 5xx is retried with backoff (the requests are idempotent), then raised
as `BackendError` naming the server (the server's 503); no answer within the timeout is `BackendTimeoutError`
(504); an answer that is not what the protocol promises is a `BackendError` too, never a wrong number.

The package, by concern: `spec` (the model URL), `protocols` (each server's wire format), `wire` (HTTP that does
not depend on a protocol), `model` (`RemoteModel`, its sessions and requests), `streams` (the streamed
continuations and `RemoteDecoder`), `detection` (connecting: protocol, served name, context, tokenizer).
"""

from alignbeam.engines.remote.detection import load_remote, load_tokenizer
from alignbeam.engines.remote.model import OUTSIDE_GAP, RemoteModel, RemoteSession
from alignbeam.engines.remote.spec import RemoteSpec, is_url
from alignbeam.engines.remote.streams import RemoteDecoder

__all__ = [
    "OUTSIDE_GAP",
    "RemoteDecoder",
    "RemoteModel",
    "RemoteSession",
    "RemoteSpec",
    "is_url",
    "load_remote",
    "load_tokenizer",
]

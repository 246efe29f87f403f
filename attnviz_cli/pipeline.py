"""Sentence + embeddings + projections -> Inspection: the one path every output format shares."""

from __future__ import annotations

from .core import AttentionInputError, self_attention
from .errors import AttnvizError, quoted
from .projections import Projections
from .results import InspectConfig, Inspection
from .vectors import Embeddings, embed_sentence


def inspect_sentence(
    sentence: str,
    embeddings: Embeddings,
    projections: Projections,
    *,
    heads: int = 1,
    scale: bool = True,
    causal: bool = False,
    oov: str = "skip",
    max_tokens: int = 512,
) -> Inspection:
    """Tokenize, embed and attend over ``sentence``; refuse empty, unknown-only or over-long input."""
    if not sentence.strip():
        raise AttnvizError("the sentence is empty")
    if projections.wq is None and embeddings.dim % heads:
        raise AttnvizError(heads_error(heads, embeddings))
    embedded = embed_sentence(sentence, embeddings, oov=oov)
    total = len(embedded.tokens) + len(embedded.dropped)
    if total > max_tokens:
        raise AttnvizError(f"the sentence has {total} tokens, more than the limit of {max_tokens} (--max-tokens)")
    if not embedded.tokens:
        what = "holds no word" if total == 0 else "has no word that is"
        raise AttnvizError(f"the sentence {quoted(sentence)} {what} in the vectors {quoted(embeddings.name)}")
    try:
        attention = self_attention(
            embedded.x, heads=heads, wq=projections.wq, wk=projections.wk, wv=projections.wv,
            wo=projections.wo, scale=scale, causal=causal,
        )
    except AttentionInputError as error:
        raise AttnvizError(f"{error} (vectors {quoted(embeddings.name)}, --heads {heads})") from error
    config = InspectConfig(
        heads=heads, d_model=embeddings.dim, d_k=attention.d_k, d_v=attention.d_v,
        d_out=attention.output.shape[1], scale=scale, causal=causal, projections=projections.kind,
        seed=projections.seed, vectors=embeddings.info,
    )
    return Inspection(
        sentence=sentence, tokens=embedded.tokens, dropped=embedded.dropped, config=config,
        inputs=embedded.x, attention=attention, notes=embedded.notes,
    )


def heads_error(heads: int, embeddings: Embeddings) -> str:
    """Why ``heads`` cannot split these embeddings, with the head counts that can."""
    divisors = [str(n) for n in range(1, embeddings.dim + 1) if embeddings.dim % n == 0]
    options = ", ".join(divisors[:-1]) + f" or {divisors[-1]}" if len(divisors) > 1 else divisors[0]
    return f"--heads {heads} does not divide the {embeddings.dim} dimensions of {quoted(embeddings.name)}; try {options}"

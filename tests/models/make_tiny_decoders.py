"""Makes the tiny random decoder LLMs the decoder tests run on, and records Hugging Face transformers' own
attentions and hidden states for them (eager attention, float64 and float32, base model without LM head),
so the tests compare attnviz's NumPy forward pass with transformers without needing torch.

    pip install torch "transformers>=4.57,<5" && python tests/models/make_tiny_decoders.py [llama qwen2 ...]

Each model is the *ForCausalLM* model saved with save_pretrained, so its checkpoint names are those of real
checkpoints ("model.layers.0.self_attn.q_proj.weight", "lm_head.weight" unless tied). All but gemma3 have d_model 64,
4 query heads sharing 2 key/value heads (GQA), weights drawn with initializer_range 0.3 and every norm
weight randomised, so attention is far from uniform and a norm left out shows. What each one checks:

- llama: Llama 3's RoPE scaling (rope_type llama3, factor 8, original context 64, rope_theta 1000: of
  the 8 frequencies 2 are kept, 1 smoothed, 5 divided by 8), tied embeddings (no lm_head.weight), BOS.
- mistral: a sliding window of 3, shorter than every text (keys k with q - 3 < k <= q).
- qwen2: biases on q, k and v (drawn wide, o has none), use_sliding_window with max_window_layers 1:
  layer 0 full, layer 1 a window of 3; no BOS.
- qwen3: per-head q_norm / k_norm (randomised) before the rotation, head_dim 32 != 64 / 4, tied, no bias.
- gemma2: norms as (1 + w) with w randomised, embeddings times sqrt(64), attention scale
  query_pre_attn_scalar ** -0.5 with query_pre_attn_scalar 24 != head_dim 16, score soft-cap 5 (scores
  reach far past it), layer 0 a window of 3, layer 1 full, four norms per layer.
- gemma3 (Gemma3ForCausalLM, model_type gemma3_text): d_model 32, 6 layers, five sliding (window 3) then
  one full, as layer_types, rope_local_base_freq 1e4 for the sliding layers and rope_theta 1e6 for the full
  one, q/k norms (1 + w) randomised, query_pre_attn_scalar 24, head_dim 32 != 32 / 4.
- phi3: fused qkv_proj and gate_up_proj, partial_rotary_factor 0.5 (8 of 16 dims rotate), a window of 3.
- olmo2: norms after each sublayer, q_norm / k_norm over the whole projection (randomised).

Tokenizer: a byte-level BPE like make_tiny.py's, with "<s>" (BOS) and "<|endoftext|>" (EOS); for llama,
mistral, gemma2 and gemma3 its post-processor prepends BOS, as Llama 3's and Gemma's do; the others add none.
reference.npz holds, for each text t: "{t}/ids", "{t}/{float64|float32}/attentions" (L, h, T, T) and
"{t}/{float64|float32}/hidden_states" (L + 1, T, d); the last hidden state is after the final norm.
config-v5.json is the same config in transformers 5's form (rope_parameters instead of rope_theta and
rope_scaling; see config_v5), written here by hand so the loader can be tested on both forms.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_tiny import TEXTS, WORDS  # noqa: E402  (the same sentences as the encoder models)

LONG_TEXT = "the water flows by the river bank and I sat on the bank at the river"
DECODER_TEXTS = [*TEXTS, LONG_TEXT]
BOS, EOS = "<s>", "<|endoftext|>"
WITH_BOS = {"llama", "mistral", "gemma2", "gemma3"}
ARCHS = ("llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3", "olmo2")
WINDOW = 3  # every sliding window, shorter than every text
# Gemma 3's five sliding layers to one full: the only pattern a Gemma 3 GGUF file can say (llama.cpp fixes it)
GEMMA3_LAYERS = ["sliding_attention"] * 5 + ["full_attention"]


def bpe_tokenizer(with_bos: bool):
    """The byte-level BPE of make_tiny.py plus BOS/EOS specials; BOS prepended when `with_bos`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[EOS, BOS])
    tokenizer.train_from_iterator(TEXTS * 20 + [" ".join(WORDS)] * 5, trainer)
    if with_bos:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, tokenizer.token_to_id(BOS))]
        )
    return tokenizer


def llama3_frequency_kinds(config) -> tuple[int, int, int]:
    """How many RoPE frequencies Llama 3's scaling keeps, smooths and divides by its factor."""
    scaling = config.rope_scaling
    d = config.head_dim
    wavelen = 2 * np.pi * config.rope_theta ** (np.arange(0, d, 2) / d)
    high = scaling["original_max_position_embeddings"] / scaling["high_freq_factor"]
    low = scaling["original_max_position_embeddings"] / scaling["low_freq_factor"]
    return int((wavelen < high).sum()), int(((wavelen >= high) & (wavelen <= low)).sum()), int((wavelen > low).sum())


def build(arch: str, vocab: int, bos: int, eos: int):
    """The ForCausalLM model of `arch`, random, float32."""
    import transformers

    common: dict[str, Any] = dict(
        vocab_size=vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, head_dim=16, max_position_embeddings=512, initializer_range=0.3,
        pad_token_id=None, bos_token_id=bos, eos_token_id=eos,
    )
    if arch == "llama":
        config = transformers.LlamaConfig(
            **common, rope_theta=1000.0, tie_word_embeddings=True, rms_norm_eps=1e-5,
            rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                          "original_max_position_embeddings": 64},
        )
        model = transformers.LlamaForCausalLM(config)
    elif arch == "mistral":
        config = transformers.MistralConfig(**common, sliding_window=WINDOW)
        model = transformers.MistralForCausalLM(config)
    elif arch == "qwen2":
        config = transformers.Qwen2Config(**common, use_sliding_window=True, max_window_layers=1, sliding_window=WINDOW,
                                          rope_theta=1e6, tie_word_embeddings=False)
        model = transformers.Qwen2ForCausalLM(config)
    elif arch == "qwen3":
        config = transformers.Qwen3Config(**{**common, "head_dim": 32}, attention_bias=False, rope_theta=1e6,
                                          tie_word_embeddings=True)
        model = transformers.Qwen3ForCausalLM(config)
    elif arch == "gemma2":
        config = transformers.Gemma2Config(**common, query_pre_attn_scalar=24, attn_logit_softcapping=5.0,
                                           final_logit_softcapping=30.0, sliding_window=WINDOW)
        model = transformers.Gemma2ForCausalLM(config)
    elif arch == "gemma3":
        config = transformers.Gemma3TextConfig(  # d_model 32 keeps its 6 layers small
            **{**common, "hidden_size": 32, "intermediate_size": 64, "head_dim": 32, "num_hidden_layers": 6},
            query_pre_attn_scalar=24, sliding_window=WINDOW, layer_types=GEMMA3_LAYERS, rope_theta=1e6,
            rope_local_base_freq=1e4,
        )
        model = transformers.Gemma3ForCausalLM(config)
    elif arch == "phi3":
        del common["head_dim"]  # Phi-3's config has none: hidden_size / num_attention_heads
        config = transformers.Phi3Config(**common, partial_rotary_factor=0.5, sliding_window=WINDOW,
                                         original_max_position_embeddings=512)
        model = transformers.Phi3ForCausalLM(config)
    elif arch == "olmo2":
        config = transformers.Olmo2Config(**common, rope_theta=5e5)
        model = transformers.Olmo2ForCausalLM(config)
    else:
        raise SystemExit(f"unknown architecture {arch!r}; known: {', '.join(ARCHS)}")
    return randomised(model, gemma=arch.startswith("gemma"))


def randomised(model, gemma: bool):
    """Norm weights (zero or one at init) and biases (zero at init) drawn wide, so each one shows."""
    import torch

    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_((0.0 if gemma else 1.0) + 0.3 * torch.randn_like(p))  # Gemma's norms use 1 + w
            elif name.endswith(".bias"):
                p.copy_(0.3 * torch.randn_like(p))
    return model


@contextmanager
def float64_throughout():
    """Inside, transformers' casts to float32 (softmax, RMSNorm, RoPE angles and inverse frequencies) keep
    float64: it makes them whatever the model's dtype, so its float64 pass would agree with exact float64
    maths only to ~1e-7. The float32 record is made outside, as transformers runs."""
    import torch

    to, softmax = torch.Tensor.to, torch.nn.functional.softmax

    def as64(dtype):
        return torch.float64 if dtype is torch.float32 else dtype

    def to64(self, *args, **kwargs):
        args = tuple(as64(a) if isinstance(a, torch.dtype) else a for a in args)
        return to(self, *args, **{k: as64(v) if k == "dtype" else v for k, v in kwargs.items()})

    def softmax64(x, *args, dtype=None, **kwargs):
        return softmax(x, *args, dtype=as64(dtype), **kwargs)

    torch.Tensor.to = to64  # type: ignore[method-assign]
    torch.Tensor.float = lambda self: to(self, torch.float64)  # type: ignore[method-assign]
    torch.nn.functional.softmax = softmax64
    try:
        yield
    finally:
        torch.Tensor.to, torch.nn.functional.softmax = to, softmax  # type: ignore[method-assign]
        del torch.Tensor.float  # back to the C method


def record_outputs(model, ids_per_text: list[list[int]], inv_freq: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """transformers' attentions and hidden states of the base model, float32 and float64, per text; with
    `inv_freq`, the RoPE inverse frequencies are those (in the run's dtype) instead of the config's."""
    import copy

    import torch

    def set_inv_freq(m) -> None:
        for module in m.modules():
            if hasattr(module, "rope_init_fn"):
                module.inv_freq = torch.tensor(inv_freq, dtype=torch.float64).to(module.inv_freq.dtype)

    def run(base, name: str) -> None:
        for t, ids in enumerate(ids_per_text):
            with torch.no_grad():
                out = base(torch.tensor([ids]), output_attentions=True, output_hidden_states=True)
            record[f"{t}/ids"] = np.array(ids, dtype=np.int64)
            record[f"{t}/{name}/attentions"] = torch.stack(out.attentions)[:, 0].numpy()  # (L, h, T, T)
            record[f"{t}/{name}/hidden_states"] = torch.stack(out.hidden_states)[:, 0].numpy()  # (L + 1, T, d)

    record: dict[str, np.ndarray] = {}
    if inv_freq is not None:
        set_inv_freq(model)
    run(model.model, "float32")
    model64 = copy.deepcopy(model).to(torch.float64)
    with float64_throughout():
        for module in model64.modules():
            if hasattr(module, "rope_init_fn"):  # inverse frequencies made in float64, not float32 then widened
                module.inv_freq, _ = module.rope_init_fn(module.config, None)
        if inv_freq is not None:
            set_inv_freq(model64)
        run(model64.model, "float64")
    return record


def sliding_layers(config) -> list[bool]:
    """Which layers have a sliding window, as transformers decides it."""
    types = getattr(config, "layer_types", None)
    if types is not None:
        return [t == "sliding_attention" for t in types]
    return [getattr(config, "sliding_window", None) is not None] * config.num_hidden_layers


def check(arch: str, model, record: dict[str, np.ndarray]) -> str:
    """Raises unless the traps bite: wide weights, causal and window zeros, far-from-uniform rows."""
    config = model.config
    biggest = max(float(p.detach().abs().max()) for p in model.parameters())
    assert biggest > 0.5, (arch, biggest)
    windows = sliding_layers(config)
    row_max = []
    for t in range(len(DECODER_TEXTS)):
        attn = record[f"{t}/float64/attentions"]  # (L, h, T, T)
        T = attn.shape[-1]
        q, k = np.indices((T, T))
        assert np.all(attn[..., k > q] == 0), (arch, t, "causal")
        np.testing.assert_allclose(attn.sum(-1), 1, rtol=1e-12)
        for layer, sliding in enumerate(windows):
            outside = q - k >= WINDOW
            if sliding:
                assert np.all(attn[layer][..., outside & (k <= q)] == 0), (arch, t, layer, "window")
            else:
                assert np.all(attn[layer][..., outside & (k <= q)] > 0), (arch, t, layer, "full")
        row_max.append(attn[..., 3:, :].max(-1).mean())
    assert config.num_key_value_heads < config.num_attention_heads
    return f"max |w| {biggest:.2f}, mean row max {np.mean(row_max):.2f}, sliding layers {windows}"


def softcap_bites(model, ids: list[int]) -> float:
    """How much Gemma 2's attentions change without the score soft-cap."""
    import torch

    with torch.no_grad():
        x = torch.tensor([ids])
        capped = torch.stack(model.model(x, output_attentions=True).attentions)
        layers = model.model.layers
        for layer in layers:
            layer.self_attn.attn_logit_softcapping = None
        uncapped = torch.stack(model.model(x, output_attentions=True).attentions)
        for layer in layers:
            layer.self_attn.attn_logit_softcapping = model.config.attn_logit_softcapping
    return float((capped - uncapped).abs().max())


def make(arch: str) -> None:
    import torch

    torch.manual_seed(ARCHS.index(arch) + 10)
    folder = HERE / f"tiny-{arch}"
    folder.mkdir(exist_ok=True)
    tokenizer = bpe_tokenizer(arch in WITH_BOS)
    model = build(arch, tokenizer.get_vocab_size(), tokenizer.token_to_id(BOS), tokenizer.token_to_id(EOS))
    model.config._attn_implementation = "eager"  # transformers returns attentions only from eager attention
    model.eval()
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    ids = [tokenizer.encode(text).ids for text in DECODER_TEXTS]
    record = record_outputs(model, ids)
    print(f"tiny-{arch}: {check(arch, model, record)}; tokens {[len(i) for i in ids]}")
    if arch == "llama":
        print(f"  llama3 frequencies kept, smoothed, scaled: {llama3_frequency_kinds(model.config)}")
        assert all(n > 0 for n in llama3_frequency_kinds(model.config))
    if arch == "gemma2":
        bite = softcap_bites(model, ids[-1])
        print(f"  soft-cap changes attentions by up to {bite:.3f}")
        assert bite > 0.05
    np.savez_compressed(folder / "reference.npz", **record)
    write_config_v5(folder)


def config_v5(config: dict[str, Any]) -> dict[str, Any]:
    """A transformers-4 config.json in transformers 5's form: rope_theta, rope_scaling, and Gemma 3's
    rope_local_base_freq and Phi-3's partial_rotary_factor move into rope_parameters; Gemma 3's is one
    dict per layer type (its scaling, if any, on the full-attention layers)."""
    v5 = dict(config)
    rope = {"rope_type": "default", **(v5.pop("rope_scaling", None) or {}), "rope_theta": v5.pop("rope_theta")}
    if "partial_rotary_factor" in v5:
        rope["partial_rotary_factor"] = v5.pop("partial_rotary_factor")
    if "rope_local_base_freq" in v5:
        rope = {"full_attention": rope,
                "sliding_attention": {"rope_type": "default", "rope_theta": v5.pop("rope_local_base_freq")}}
    v5["rope_parameters"] = rope
    v5["transformers_version"] = "5.0.0"
    return v5


def write_config_v5(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    (folder / "config-v5.json").write_text(json.dumps(config_v5(config), indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    for name in sys.argv[1:] or ARCHS:  # or just those named
        make(name)
        print(f"wrote {HERE / f'tiny-{name}'}")

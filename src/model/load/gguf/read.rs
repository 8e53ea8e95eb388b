//! Loads a GGUF file (llama.cpp's format) into Hugging Face form: f32 tensors under HF names,
//! q/k rows un-permuted from llama.cpp's layout, a `config.json`-like value and the tokenizer.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use candle_core::quantized::gguf_file::Content;
use candle_core::{Device, Tensor};
use serde_json::json;

use super::header_scan::{explain_header_error, scan_header};
use super::metadata::GgufMetadata;
use crate::model::error::{candle_message, ModelError, ModelResult};
use crate::model::load::tokenizer::{tokenizer_from_gguf, SpecialTokens};

/// A GGUF model in Hugging Face form.
#[derive(Debug)]
pub struct GgufModel {
    /// The fields of the equivalent Hugging Face `config.json` (model_type, sizes, ids, ...).
    pub config_json: serde_json::Value,
    /// Every weight under its Hugging Face name, dequantized to f32, row-major `[out, in]`.
    pub tensors: HashMap<String, Tensor>,
    /// The tokenizer rebuilt from the GGUF metadata.
    pub tokenizer: tokenizers::Tokenizer,
    /// bos/eos/pad/unk ids from the metadata.
    pub special_tokens: SpecialTokens,
    /// `general.name`, else the file name without extension.
    pub name: String,
}

/// The architectures spex reads from GGUF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arch {
    Llama,
    Qwen2,
}

impl Arch {
    fn key(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
        }
    }
}

/// Hyper-parameters read from `<arch>.*` metadata.
#[derive(Debug, Clone, PartialEq)]
struct Hyper {
    layers: usize,
    hidden: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    ffn: usize,
    rms_eps: f64,
    rope_theta: f64,
    context: usize,
}

/// How one GGUF tensor becomes one HF tensor.
#[derive(Debug, Clone, PartialEq)]
struct TensorPlan {
    hf_name: String,
    shape: Vec<usize>,
    /// `Some(h)`: rows interleaved by llama.cpp's converter over `h` heads, to un-permute.
    unpermute_heads: Option<usize>,
}

/// Loads every tensor of the GGUF at `path` onto `device` as f32, with its config and tokenizer.
pub fn load_gguf(path: &Path, device: &Device) -> ModelResult<GgufModel> {
    let file = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ModelError::MissingFile {
            path: path.to_path_buf(),
            what: "GGUF file".to_string(),
            hint: String::new(),
        },
        _ => ModelError::File {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
    })?;
    read_gguf(&mut BufReader::new(file), path, device)
}

/// [`load_gguf`] from any reader of the file's bytes; `path` names it in errors.
pub(crate) fn read_gguf<R: Read + Seek>(
    reader: &mut BufReader<R>,
    path: &Path,
    device: &Device,
) -> ModelResult<GgufModel> {
    let unreadable = |reason: String| ModelError::File {
        path: path.to_path_buf(),
        reason,
    };
    // candle divides by `general.alignment` unchecked: a 0 there would panic inside it.
    let scan = scan_header(reader).ok();
    if scan.as_ref().is_some_and(|scan| scan.alignment == Some(0)) {
        return Err(ModelError::Field {
            path: path.to_path_buf(),
            field: "general.alignment".to_string(),
            reason: "0: the tensor data's alignment must be a positive power of two (GGUF's default is 32)".to_string(),
        });
    }
    reader
        .seek(SeekFrom::Start(0))
        .map_err(|e| unreadable(e.to_string()))?;
    let content = match Content::read(reader) {
        Ok(content) => content,
        Err(err) => return Err(explain_header_error(path, err, scan.as_ref())),
    };
    let Content {
        metadata,
        tensor_infos,
        tensor_data_offset,
        ..
    } = content;
    let metadata = GgufMetadata {
        path: path.to_path_buf(),
        values: metadata,
    };
    let arch = architecture(&metadata)?;
    let hyper = hyper_parameters(&metadata, arch)?;
    let tokenizer = tokenizer_from_gguf(&metadata)?;
    let special_tokens = SpecialTokens::from_gguf(&metadata)?;

    let embed = tensor_infos
        .get("token_embd.weight")
        .ok_or_else(|| ModelError::MissingWeight {
            path: path.to_path_buf(),
            tensor: "token_embd.weight".to_string(),
        })?;
    let vocab = embed.shape.dims().first().copied().unwrap_or(0);
    check_vocab(&metadata, arch, vocab, &tokenizer)?;
    let tied = !tensor_infos.contains_key("output.weight");
    if hyper.layers > tensor_infos.len() {
        return Err(metadata.field_error(
            &format!("{}.block_count", arch.key()),
            &format!(
                "{} layers, but the file holds only {} tensors",
                hyper.layers,
                tensor_infos.len()
            ),
        ));
    }
    let plans = tensor_plans(&hyper, arch, vocab, tied);

    let mut names: Vec<&String> = tensor_infos.keys().collect();
    names.sort();
    if let Some(extra) = names.iter().find(|name| !plans.contains_key(name.as_str())) {
        return Err(ModelError::UnexpectedTensor {
            path: path.to_path_buf(),
            tensor: extra.to_string(),
            arch: arch.key().to_string(),
        });
    }
    // One tensor after another: dequantizing several at once (tried on the CPU with rayon) loaded
    // 1.7x faster but raised the peak memory of a run by 10 %, and by up to a tensor's f32 copy
    // per thread on larger models (benches/RESULTS.md, "Load time against candle").
    let mut tensors = HashMap::with_capacity(plans.len());
    for (gguf_name, plan) in &plans {
        let info = tensor_infos
            .get(gguf_name)
            .ok_or_else(|| ModelError::MissingWeight {
                path: path.to_path_buf(),
                tensor: gguf_name.clone(),
            })?;
        if info.shape.dims() != plan.shape.as_slice() {
            return Err(ModelError::WeightShape {
                path: path.to_path_buf(),
                tensor: gguf_name.clone(),
                expected: plan.shape.clone(),
                got: info.shape.dims().to_vec(),
            });
        }
        // candle counts the elements unchecked; 8 bytes per element bounds every GGML type.
        let countable = plan
            .shape
            .iter()
            .try_fold(8usize, |acc, &d| acc.checked_mul(d))
            .is_some();
        if !countable {
            return Err(unreadable(format!(
                "tensor `{gguf_name}`: shape {:?} has more elements than can be counted",
                plan.shape
            )));
        }
        let tensor_error = |e: candle_core::Error| {
            let e = candle_message(&e);
            unreadable(format!("tensor `{gguf_name}` ({:?}): {e}", info.ggml_dtype))
        };
        let quantized = info
            .read(reader, tensor_data_offset, device)
            .map_err(tensor_error)?;
        let mut tensor = quantized.dequantize(device).map_err(tensor_error)?;
        if let Some(heads) = plan.unpermute_heads {
            tensor = unpermute_rows(&tensor, heads).map_err(tensor_error)?;
        }
        tensors.insert(plan.hf_name.clone(), tensor);
    }

    let name = match metadata.opt_string("general.name")? {
        Some(name) if !name.trim().is_empty() => name.to_string(),
        _ => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let config_json = config_json(arch, &hyper, vocab, tied, &special_tokens);
    Ok(GgufModel {
        config_json,
        tensors,
        tokenizer,
        special_tokens,
        name,
    })
}

/// Undoes llama.cpp's q/k row interleave: `[rows, ..]` seen as `[heads, rows/heads/2, 2, ..]`
/// becomes `[heads, 2, rows/heads/2, ..]` (each head's rotary halves back to `rotate_half` order).
pub fn unpermute_rows(tensor: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let dims = tensor.dims().to_vec();
    let rows = dims.first().copied().unwrap_or(0);
    if heads == 0 || rows % (2 * heads) != 0 {
        candle_core::bail!("cannot un-permute {rows} rows over {heads} heads");
    }
    let half = rows / heads / 2;
    let rest: Vec<usize> = dims[1..].to_vec();
    let mut split = vec![heads, half, 2];
    split.extend(&rest);
    tensor
        .reshape(split)?
        .transpose(1, 2)?
        .contiguous()?
        .reshape(dims)
}

fn architecture(metadata: &GgufMetadata) -> ModelResult<Arch> {
    let value = metadata.string("general.architecture")?;
    match value {
        "llama" => Ok(Arch::Llama),
        "qwen2" => Ok(Arch::Qwen2),
        other => Err(ModelError::UnsupportedArchitecture {
            path: metadata.path.clone(),
            field: "general.architecture".to_string(),
            value: other.to_string(),
            supported: "llama, qwen2".to_string(),
        }),
    }
}

fn hyper_parameters(metadata: &GgufMetadata, arch: Arch) -> ModelResult<Hyper> {
    let key = |name: &str| format!("{}.{name}", arch.key());
    let positive = |name: &str| -> ModelResult<usize> {
        let full = key(name);
        let value = metadata.usize(&full)?;
        if value == 0 {
            return Err(metadata.field_error(&full, "must be positive"));
        }
        Ok(value)
    };
    let hidden = positive("embedding_length")?;
    let heads = positive("attention.head_count")?;
    let kv_heads = match metadata.opt_usize(&key("attention.head_count_kv"))? {
        Some(kv) => kv,
        None => heads,
    };
    if kv_heads == 0 || heads % kv_heads != 0 {
        return Err(metadata.field_error(
            &key("attention.head_count_kv"),
            &format!("{kv_heads} does not divide the {heads} query heads"),
        ));
    }
    let head_dim = match metadata.opt_usize(&key("attention.key_length"))? {
        Some(dim) => dim,
        None if hidden % heads == 0 => hidden / heads,
        None => {
            return Err(metadata.field_error(
                &key("attention.head_count"),
                &format!("{heads} heads do not divide embedding_length {hidden}"),
            ))
        }
    };
    if head_dim == 0 || head_dim % 2 != 0 {
        return Err(metadata.field_error(
            &key("attention.key_length"),
            &format!("head dimension {head_dim} must be even and positive"),
        ));
    }
    if heads.checked_mul(head_dim).is_none() {
        return Err(metadata.field_error(
            &key("attention.head_count"),
            &format!("{heads} heads of dimension {head_dim} overflow a count of rows"),
        ));
    }
    if let Some(scaling) = metadata.opt_string(&key("rope.scaling.type"))? {
        if scaling != "none" {
            return Err(metadata.field_error(
                &key("rope.scaling.type"),
                &format!("RoPE scaling `{scaling}` is not supported"),
            ));
        }
    }
    Ok(Hyper {
        layers: positive("block_count")?,
        hidden,
        heads,
        kv_heads,
        head_dim,
        ffn: positive("feed_forward_length")?,
        rms_eps: metadata.f64(&key("attention.layer_norm_rms_epsilon"))?,
        rope_theta: metadata
            .opt_f64(&key("rope.freq_base"))?
            .unwrap_or(10_000.0),
        context: positive("context_length")?,
    })
}

/// The tokenizer's ids must all index rows of the embedding; `<arch>.vocab_size` must agree.
fn check_vocab(
    metadata: &GgufMetadata,
    arch: Arch,
    vocab: usize,
    tokenizer: &tokenizers::Tokenizer,
) -> ModelResult<()> {
    let field = format!("{}.vocab_size", arch.key());
    if let Some(declared) = metadata.opt_usize(&field)? {
        if declared != vocab {
            return Err(metadata.field_error(
                &field,
                &format!("{declared} disagrees with token_embd.weight's {vocab} rows"),
            ));
        }
    }
    let tokens = tokenizer.get_vocab_size(true);
    if tokens > vocab {
        return Err(ModelError::Tokenizer {
            path: metadata.path.clone(),
            reason: format!(
                "{tokens} tokens but token_embd.weight has only {vocab} rows (tokenizer and model do not match)"
            ),
        });
    }
    Ok(())
}

/// GGUF name -> plan for every tensor the architecture has (sorted by GGUF name).
fn tensor_plans(
    hyper: &Hyper,
    arch: Arch,
    vocab: usize,
    tied: bool,
) -> BTreeMap<String, TensorPlan> {
    let d = hyper.hidden;
    let q_rows = hyper.heads * hyper.head_dim;
    let kv_rows = hyper.kv_heads * hyper.head_dim;
    let permuted = arch == Arch::Llama;
    let mut plans = BTreeMap::new();
    let mut add = |gguf: String, hf: String, shape: Vec<usize>, heads: Option<usize>| {
        let unpermute_heads = if permuted { heads } else { None };
        plans.insert(
            gguf,
            TensorPlan {
                hf_name: hf,
                shape,
                unpermute_heads,
            },
        );
    };
    add(
        "token_embd.weight".into(),
        "model.embed_tokens.weight".into(),
        vec![vocab, d],
        None,
    );
    add(
        "output_norm.weight".into(),
        "model.norm.weight".into(),
        vec![d],
        None,
    );
    if !tied {
        add(
            "output.weight".into(),
            "lm_head.weight".into(),
            vec![vocab, d],
            None,
        );
    }
    for layer in 0..hyper.layers {
        let g = |suffix: &str| format!("blk.{layer}.{suffix}");
        let h = |suffix: &str| format!("model.layers.{layer}.{suffix}");
        add(
            g("attn_norm.weight"),
            h("input_layernorm.weight"),
            vec![d],
            None,
        );
        add(
            g("ffn_norm.weight"),
            h("post_attention_layernorm.weight"),
            vec![d],
            None,
        );
        add(
            g("attn_q.weight"),
            h("self_attn.q_proj.weight"),
            vec![q_rows, d],
            Some(hyper.heads),
        );
        add(
            g("attn_k.weight"),
            h("self_attn.k_proj.weight"),
            vec![kv_rows, d],
            Some(hyper.kv_heads),
        );
        add(
            g("attn_v.weight"),
            h("self_attn.v_proj.weight"),
            vec![kv_rows, d],
            None,
        );
        add(
            g("attn_output.weight"),
            h("self_attn.o_proj.weight"),
            vec![d, q_rows],
            None,
        );
        add(
            g("ffn_gate.weight"),
            h("mlp.gate_proj.weight"),
            vec![hyper.ffn, d],
            None,
        );
        add(
            g("ffn_up.weight"),
            h("mlp.up_proj.weight"),
            vec![hyper.ffn, d],
            None,
        );
        add(
            g("ffn_down.weight"),
            h("mlp.down_proj.weight"),
            vec![d, hyper.ffn],
            None,
        );
        if arch == Arch::Qwen2 {
            add(
                g("attn_q.bias"),
                h("self_attn.q_proj.bias"),
                vec![q_rows],
                None,
            );
            add(
                g("attn_k.bias"),
                h("self_attn.k_proj.bias"),
                vec![kv_rows],
                None,
            );
            add(
                g("attn_v.bias"),
                h("self_attn.v_proj.bias"),
                vec![kv_rows],
                None,
            );
        }
    }
    plans
}

/// The Hugging Face `config.json` fields equivalent to the GGUF metadata.
fn config_json(
    arch: Arch,
    hyper: &Hyper,
    vocab: usize,
    tied: bool,
    special: &SpecialTokens,
) -> serde_json::Value {
    let mut config = json!({
        "model_type": arch.key(),
        "hidden_size": hyper.hidden,
        "intermediate_size": hyper.ffn,
        "num_hidden_layers": hyper.layers,
        "num_attention_heads": hyper.heads,
        "num_key_value_heads": hyper.kv_heads,
        "head_dim": hyper.head_dim,
        "hidden_act": "silu",
        "rms_norm_eps": hyper.rms_eps,
        "rope_theta": hyper.rope_theta,
        "rope_scaling": null,
        "max_position_embeddings": hyper.context,
        "vocab_size": vocab,
        "tie_word_embeddings": tied,
        "bos_token_id": special.bos,
        "eos_token_id": special.eos,
        "pad_token_id": special.pad,
        "torch_dtype": "float32",
    });
    let extra = match arch {
        Arch::Llama => json!({
            "architectures": ["LlamaForCausalLM"],
            "attention_bias": false,
            "mlp_bias": false,
        }),
        Arch::Qwen2 => json!({
            "architectures": ["Qwen2ForCausalLM"],
            "use_sliding_window": false,
        }),
    };
    if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        config.extend(extra.clone());
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::tiny_gguf::{self, Tiny};

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        assert_eq!(a.dims(), b.dims());
        (a - b)
            .and_then(|d| d.abs())
            .and_then(|d| d.flatten_all())
            .and_then(|d| d.max(0))
            .and_then(|d| d.to_scalar::<f32>())
            .expect("tensor math")
    }

    fn write(tiny: &Tiny) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        tiny.write(&path);
        (dir, path)
    }

    fn load_err(tiny: &Tiny) -> String {
        let (_dir, path) = write(tiny);
        load_gguf(&path, &Device::Cpu).unwrap_err().to_string()
    }

    #[test]
    fn unpermute_inverts_the_hand_written_permutation() {
        let hf = Tensor::arange(0f32, 48.0 * 3.0, &Device::Cpu)
            .unwrap()
            .reshape((48, 3))
            .unwrap();
        for heads in [1, 2, 3, 6] {
            let stored = tiny_gguf::permute_rows_by_hand(&hf, heads);
            assert!(
                max_abs_diff(&stored, &hf) > 0.0,
                "the permutation must move rows"
            );
            let back = unpermute_rows(&stored, heads).unwrap();
            assert_eq!(max_abs_diff(&back, &hf), 0.0, "heads = {heads}");
        }
        let bias = Tensor::arange(0f32, 12.0, &Device::Cpu).unwrap();
        let back = unpermute_rows(&tiny_gguf::permute_rows_by_hand(&bias, 2), 2).unwrap();
        assert_eq!(max_abs_diff(&back, &bias), 0.0);
        assert!(unpermute_rows(&bias, 5).is_err());
    }

    #[test]
    fn f32_gguf_loads_exactly_under_hf_names() {
        let tiny = Tiny::llama(false);
        let (_dir, path) = write(&tiny);
        let model = load_gguf(&path, &Device::Cpu).unwrap();
        let mut names: Vec<&String> = model.tensors.keys().collect();
        names.sort();
        assert_eq!(names, tiny.hf.keys().collect::<Vec<_>>());
        for (name, want) in &tiny.hf {
            assert_eq!(max_abs_diff(&model.tensors[name], want), 0.0, "{name}");
        }
        assert_eq!(model.name, "Tiny Llama");
    }

    #[test]
    fn quantized_tensors_are_dequantized_and_unpermuted() {
        let tiny = Tiny::llama(true);
        let (_dir, path) = write(&tiny);
        let model = load_gguf(&path, &Device::Cpu).unwrap();
        // Q8_0 keeps values within half a step of max|x|/127; Q4_1 within half of range/15.
        let embed = &tiny.hf["model.embed_tokens.weight"];
        let err = max_abs_diff(&model.tensors["model.embed_tokens.weight"], embed);
        assert!(err > 0.0 && err <= 1.0 / 127.0, "Q8_0 error {err}");
        let up = &tiny.hf["model.layers.1.mlp.up_proj.weight"];
        let err = max_abs_diff(&model.tensors["model.layers.1.mlp.up_proj.weight"], up);
        assert!(
            err > 0.0 && err <= 2.0 / 15.0 / 2.0 + 1e-3,
            "Q4_1 error {err}"
        );
    }

    #[test]
    fn quantized_q_rows_are_unpermuted_like_f32_rows() {
        // Quantization acts per row, so the load must equal quantize->dequantize of the HF rows.
        let mut tiny = Tiny::llama(false);
        for entry in tiny
            .gguf
            .iter_mut()
            .filter(|(n, _)| n.ends_with("attn_k.weight"))
        {
            entry.1 .1 = candle_core::quantized::GgmlDType::Q8_0;
        }
        let (_dir, path) = write(&tiny);
        let model = load_gguf(&path, &Device::Cpu).unwrap();
        let name = "model.layers.0.self_attn.k_proj.weight";
        let want = candle_core::quantized::QTensor::quantize(
            &tiny.hf[name],
            candle_core::quantized::GgmlDType::Q8_0,
        )
        .unwrap()
        .dequantize(&Device::Cpu)
        .unwrap();
        assert_eq!(max_abs_diff(&model.tensors[name], &want), 0.0);
    }

    #[test]
    fn config_json_mirrors_the_metadata() {
        let (_dir, path) = write(&Tiny::llama(false));
        let config = load_gguf(&path, &Device::Cpu).unwrap().config_json;
        let expect = json!({
            "architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
            "hidden_act": "silu", "rms_norm_eps": f64::from(1e-5f32), "rope_theta": 100000.0,
            "max_position_embeddings": 128, "vocab_size": 16, "tie_word_embeddings": true,
            "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 2,
            "attention_bias": false, "mlp_bias": false, "rope_scaling": null,
            "torch_dtype": "float32",
        });
        assert_eq!(config, expect);
    }

    #[test]
    fn untied_output_becomes_lm_head() {
        let mut tiny = Tiny::llama(false);
        let embed = tiny.gguf["token_embd.weight"].0.clone();
        tiny.gguf.insert(
            "output.weight".into(),
            (embed, candle_core::quantized::GgmlDType::F32),
        );
        let (_dir, path) = write(&tiny);
        let model = load_gguf(&path, &Device::Cpu).unwrap();
        assert!(model.tensors.contains_key("lm_head.weight"));
        assert_eq!(model.config_json["tie_word_embeddings"], json!(false));
    }

    #[test]
    fn missing_file_is_named() {
        let err = load_gguf(Path::new("/no/such/file.gguf"), &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/no/such/file.gguf") && err.contains("not found"),
            "{err}"
        );
    }

    #[test]
    fn unsupported_architecture_is_named() {
        let mut tiny = Tiny::llama(false);
        tiny.metadata.insert(
            "general.architecture".into(),
            candle_core::quantized::gguf_file::Value::String("mamba".into()),
        );
        let err = load_err(&tiny);
        assert!(
            err.contains("general.architecture") && err.contains("mamba"),
            "{err}"
        );
    }

    #[test]
    fn unsupported_quantization_names_tensor_and_type() {
        let tiny = Tiny::llama(false);
        let (_dir, path) = write(&tiny);
        // Rewrite the stored type of one tensor to IQ2_XXS (16), a type candle cannot read.
        let mut bytes = std::fs::read(&path).unwrap();
        let name = b"blk.1.ffn_up.weight";
        let at = bytes
            .windows(name.len())
            .position(|w| w == name)
            .expect("tensor info present");
        let type_at = at + name.len() + 4 + 2 * 8;
        bytes[type_at..type_at + 4].copy_from_slice(&16u32.to_le_bytes());
        std::fs::write(&path, bytes).unwrap();
        let err = load_gguf(&path, &Device::Cpu).unwrap_err().to_string();
        assert!(
            err.contains("blk.1.ffn_up.weight") && err.contains("IQ2_XXS"),
            "{err}"
        );
    }

    #[test]
    fn wrong_shape_missing_and_unexpected_tensors_are_named() {
        let f32 = candle_core::quantized::GgmlDType::F32;
        let mut tiny = Tiny::llama(false);
        let small = Tensor::zeros((32, 64), candle_core::DType::F32, &Device::Cpu).unwrap();
        tiny.gguf.insert("blk.1.attn_q.weight".into(), (small, f32));
        let err = load_err(&tiny);
        assert!(
            err.contains("blk.1.attn_q.weight") && err.contains("[32, 64]"),
            "{err}"
        );

        let mut tiny = Tiny::llama(false);
        tiny.gguf.remove("blk.0.ffn_up.weight");
        let err = load_err(&tiny);
        assert!(
            err.contains("blk.0.ffn_up.weight") && err.contains("missing"),
            "{err}"
        );

        let mut tiny = Tiny::llama(false);
        let freqs = Tensor::ones(8, candle_core::DType::F32, &Device::Cpu).unwrap();
        tiny.gguf.insert("rope_freqs.weight".into(), (freqs, f32));
        let err = load_err(&tiny);
        assert!(err.contains("rope_freqs.weight"), "{err}");
    }

    #[test]
    fn bad_metadata_is_named() {
        let mut tiny = Tiny::llama(false);
        tiny.metadata.remove("llama.block_count");
        let err = load_err(&tiny);
        assert!(
            err.contains("llama.block_count") && err.contains("missing"),
            "{err}"
        );

        let mut tiny = Tiny::llama(false);
        tiny.metadata.insert(
            "llama.attention.head_count_kv".into(),
            candle_core::quantized::gguf_file::Value::U32(3),
        );
        let err = load_err(&tiny);
        assert!(err.contains("llama.attention.head_count_kv"), "{err}");
    }

    #[test]
    fn tokenizer_larger_than_the_embedding_is_a_mismatch() {
        let mut tiny = Tiny::llama(false);
        let small = Tensor::zeros((8, 64), candle_core::DType::F32, &Device::Cpu).unwrap();
        tiny.gguf.insert(
            "token_embd.weight".into(),
            (small, candle_core::quantized::GgmlDType::F32),
        );
        let err = load_err(&tiny);
        assert!(
            err.contains("tokenizer") && err.contains("15 tokens"),
            "{err}"
        );
    }

    #[test]
    fn truncated_tensor_data_names_the_file_and_tensor_in_one_line() {
        let tiny = Tiny::llama(true);
        let (_dir, path) = write(&tiny);
        let len = std::fs::metadata(&path).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len - len / 4).unwrap();
        let err = load_gguf(&path, &Device::Cpu).unwrap_err().to_string();
        assert!(
            err.contains("tiny.gguf") && err.contains("tensor `"),
            "{err}"
        );
        assert!(err.contains("remaining in file"), "{err}");
        // No backtrace, even with RUST_BACKTRACE set (candle attaches one to its errors then).
        assert!(!err.contains('\n'), "{err}");
    }

    #[test]
    fn garbage_file_is_reported_as_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.gguf");
        std::fs::write(&path, b"not a gguf at all").unwrap();
        let err = load_gguf(&path, &Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("bad.gguf") && err.contains("GGUF"), "{err}");
    }
}

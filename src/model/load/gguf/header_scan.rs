//! A scan of a GGUF header before candle reads it: what candle would trust unchecked
//! (`general.alignment`, which it divides by), and, for error messages, the first tensor whose
//! GGML type candle does not know, so the error names that tensor and type.

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use crate::model::error::{candle_message, ModelError};

/// Turns candle's header error into one that names the tensor when the cause is a GGML type
/// candle does not know (candle's own message names neither the tensor nor the type), from the
/// header's `scan` when there is one.
pub(super) fn explain_header_error(
    path: &Path,
    err: candle_core::Error,
    scan: Option<&HeaderScan>,
) -> ModelError {
    let unknown =
        scan.and_then(|scan| scan.tensors.iter().find(|(_, id)| !is_known_ggml_type(*id)));
    match unknown {
        Some((tensor, id)) => ModelError::UnsupportedQuantization {
            path: path.to_path_buf(),
            tensor: tensor.clone(),
            dtype: format!("{} (id {id})", ggml_type_name(*id)),
        },
        None => ModelError::File {
            path: path.to_path_buf(),
            reason: format!("not a readable GGUF file: {}", candle_message(&err)),
        },
    }
}

/// GGML type ids candle 0.11 can read and dequantize.
fn is_known_ggml_type(id: u32) -> bool {
    matches!(id, 0..=3 | 6..=15 | 30)
}

/// llama.cpp's name for a GGML type id (for error messages).
fn ggml_type_name(id: u32) -> &'static str {
    const NAMES: [&str; 40] = [
        "F32",
        "F16",
        "Q4_0",
        "Q4_1",
        "Q4_2",
        "Q4_3",
        "Q5_0",
        "Q5_1",
        "Q8_0",
        "Q8_1",
        "Q2_K",
        "Q3_K",
        "Q4_K",
        "Q5_K",
        "Q6_K",
        "Q8_K",
        "IQ2_XXS",
        "IQ2_XS",
        "IQ3_XXS",
        "IQ1_S",
        "IQ4_NL",
        "IQ3_S",
        "IQ2_S",
        "IQ4_XS",
        "I8",
        "I16",
        "I32",
        "I64",
        "F64",
        "IQ1_M",
        "BF16",
        "Q4_0_4_4",
        "Q4_0_4_8",
        "Q4_0_8_8",
        "TQ1_0",
        "TQ2_0",
        "IQ4_NL_4_4",
        "IQ4_NL_4_8",
        "IQ4_NL_8_8",
        "MXFP4",
    ];
    usize::try_from(id)
        .ok()
        .and_then(|i| NAMES.get(i).copied())
        .unwrap_or("unknown type")
}

/// What a scan of a GGUF header finds: `(tensor name, GGML type id)` in file order, and
/// `general.alignment` when it is stored as an integer type candle reads it from.
#[derive(Debug, Default, PartialEq)]
pub(super) struct HeaderScan {
    /// Every tensor's name and GGML type id.
    pub tensors: Vec<(String, u32)>,
    /// `general.alignment` as candle would read it (`None`: absent, or of another type).
    pub alignment: Option<i64>,
}

/// Longest string, and most array elements, candle accepts in a GGUF header.
const MAX_LENGTH: u64 = 1 << 30;
/// Deepest array nesting candle accepts.
const MAX_DEPTH: u32 = 64;
/// Most dimensions of a tensor candle accepts.
const MAX_DIMS: u32 = 4;

/// Walks a GGUF v1/v2/v3 header with candle's own limits, skipping every value but
/// `general.alignment` and the tensors' types: what candle's reader would trust, checked first.
pub(super) fn scan_header<R: Read + Seek>(
    reader: &mut BufReader<R>,
) -> std::io::Result<HeaderScan> {
    let start = reader.stream_position()?;
    let file_size = reader.seek(SeekFrom::End(0))?;
    reader.seek(SeekFrom::Start(start))?;
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    if !matches!(read_u32(reader)?, 0x4655_4747 | 0x4747_5546) {
        return Err(bad("not a GGUF file"));
    }
    let wide = match read_u32(reader)? {
        1 => false,
        2 | 3 => true,
        _ => return Err(bad("unknown GGUF version")),
    };
    let tensors = read_len(reader, wide)?;
    let entries = read_len(reader, wide)?;
    let prefix = if wide { 8 } else { 4 };
    let least = entries
        .saturating_mul(prefix + 5)
        .saturating_add(tensors.saturating_mul(prefix + 16));
    if tensors > MAX_LENGTH || entries > MAX_LENGTH || least > remaining(reader, file_size)? {
        return Err(bad("more tensors or metadata entries than the file holds"));
    }
    let mut scan = HeaderScan::default();
    for _ in 0..entries {
        let key = read_string(reader, wide)?;
        let value_type = read_u32(reader)?;
        if key == b"general.alignment" && value_type <= 5 {
            let width = [1, 1, 2, 2, 4, 4][value_type as usize];
            let mut bytes = [0u8; 8];
            reader.read_exact(&mut bytes[..width])?;
            let raw = u64::from_le_bytes(bytes);
            let signed = value_type % 2 == 1;
            let shift = 64 - 8 * width as u32;
            scan.alignment = Some(if signed {
                ((raw << shift) as i64) >> shift
            } else {
                raw as i64
            });
        } else {
            skip_value(reader, value_type, wide, 0, file_size)?;
        }
    }
    for _ in 0..tensors {
        let name = read_string(reader, wide)?;
        let dims = read_u32(reader)?;
        if dims > MAX_DIMS {
            return Err(bad("too many dimensions"));
        }
        reader.seek_relative(i64::from(dims) * if wide { 8 } else { 4 })?;
        let type_id = read_u32(reader)?;
        read_u64(reader)?; // offset
        scan.tensors
            .push((String::from_utf8_lossy(&name).into_owned(), type_id));
    }
    Ok(scan)
}

/// Bytes left in the file after the reader's position.
fn remaining<R: Read + Seek>(reader: &mut BufReader<R>, file_size: u64) -> std::io::Result<u64> {
    Ok(file_size.saturating_sub(reader.stream_position()?))
}

/// The fewest bytes a value of GGUF type `value_type` takes on disk (candle's bound).
fn min_size(value_type: u32, wide: bool) -> u64 {
    let prefix = if wide { 8 } else { 4 };
    match value_type {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 => prefix,
        9 => 4 + prefix,
        _ => 8,
    }
}

fn skip_value<R: Read + Seek>(
    reader: &mut BufReader<R>,
    value_type: u32,
    wide: bool,
    depth: u32,
    file_size: u64,
) -> std::io::Result<()> {
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "bad metadata value");
    match value_type {
        0 | 1 | 7 => reader.seek_relative(1),
        2 | 3 => reader.seek_relative(2),
        4..=6 => reader.seek_relative(4),
        10..=12 => reader.seek_relative(8),
        8 => skip_string(reader, wide),
        9 if depth < MAX_DEPTH => {
            let item_type = read_u32(reader)?;
            let count = read_len(reader, wide)?;
            let least = count.saturating_mul(min_size(item_type, wide));
            if count > MAX_LENGTH || least > remaining(reader, file_size)? {
                return Err(bad());
            }
            for _ in 0..count {
                skip_value(reader, item_type, wide, depth + 1, file_size)?;
            }
            Ok(())
        }
        _ => Err(bad()),
    }
}

/// A string's length: `u64` in GGUF v2/v3 (`wide`), `u32` in v1.
fn read_len<R: Read>(reader: &mut R, wide: bool) -> std::io::Result<u64> {
    if wide {
        read_u64(reader)
    } else {
        read_u32(reader).map(u64::from)
    }
}

fn skip_string<R: Read + Seek>(reader: &mut BufReader<R>, wide: bool) -> std::io::Result<()> {
    let len = read_len(reader, wide)?;
    if len > MAX_LENGTH {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "string too long",
        ));
    }
    reader.seek_relative(len as i64)
}

/// A string of at most 64 KiB (keys, tensor names); longer ones are skipped and read as empty.
fn read_string<R: Read + Seek>(reader: &mut BufReader<R>, wide: bool) -> std::io::Result<Vec<u8>> {
    let len = read_len(reader, wide)?;
    if len > 1 << 16 {
        if len > MAX_LENGTH {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "string too long",
            ));
        }
        reader.seek_relative(len as i64)?;
        return Ok(Vec::new());
    }
    let mut bytes = vec![0u8; len as usize];
    reader.read_exact(&mut bytes)?;
    Ok(bytes)
}

fn read_u32<R: Read>(reader: &mut R) -> std::io::Result<u32> {
    let mut bytes = [0u8; 4];
    reader.read_exact(&mut bytes)?;
    Ok(u32::from_le_bytes(bytes))
}

fn read_u64<R: Read>(reader: &mut R) -> std::io::Result<u64> {
    let mut bytes = [0u8; 8];
    reader.read_exact(&mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}

//! For error messages only: when candle cannot read a GGUF header, a scan of the header for the
//! first tensor whose GGML type candle does not know, so the error names that tensor and type.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use crate::model::error::{candle_message, ModelError};

/// Turns candle's header error into one that names the tensor when the cause is a GGML type
/// candle does not know (candle's own message names neither the tensor nor the type).
pub(super) fn explain_header_error(path: &Path, err: candle_core::Error) -> ModelError {
    let unknown = File::open(path)
        .ok()
        .and_then(|file| tensor_type_ids(&mut BufReader::new(file)).ok())
        .and_then(|types| types.into_iter().find(|(_, id)| !is_known_ggml_type(*id)));
    match unknown {
        Some((tensor, id)) => ModelError::UnsupportedQuantization {
            path: path.to_path_buf(),
            tensor,
            dtype: format!("{} (id {id})", ggml_type_name(id)),
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

/// Reads a GGUF v2/v3 header just far enough to list `(tensor name, GGML type id)`.
fn tensor_type_ids<R: Read + Seek>(reader: &mut R) -> std::io::Result<Vec<(String, u32)>> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    if read_u32(reader)? != 0x4655_4747 {
        return Err(bad("not a GGUF file"));
    }
    if !matches!(read_u32(reader)?, 2 | 3) {
        return Err(bad("only GGUF v2 and v3 headers are scanned"));
    }
    let tensors = read_u64(reader)?;
    let entries = read_u64(reader)?;
    for _ in 0..entries {
        skip_string(reader)?;
        let value_type = read_u32(reader)?;
        skip_value(reader, value_type, 0)?;
    }
    let mut found = Vec::new();
    for _ in 0..tensors {
        let len = read_u64(reader)?;
        if len > 1 << 16 {
            return Err(bad("tensor name too long"));
        }
        let mut name = vec![0u8; len as usize];
        reader.read_exact(&mut name)?;
        let dims = read_u32(reader)?;
        if dims > 8 {
            return Err(bad("too many dimensions"));
        }
        reader.seek(SeekFrom::Current(8 * i64::from(dims)))?;
        let type_id = read_u32(reader)?;
        read_u64(reader)?; // offset
        found.push((String::from_utf8_lossy(&name).into_owned(), type_id));
    }
    Ok(found)
}

fn skip_value<R: Read + Seek>(reader: &mut R, value_type: u32, depth: u32) -> std::io::Result<()> {
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "bad metadata value");
    match value_type {
        0 | 1 | 7 => reader.seek(SeekFrom::Current(1)).map(|_| ()),
        2 | 3 => reader.seek(SeekFrom::Current(2)).map(|_| ()),
        4..=6 => reader.seek(SeekFrom::Current(4)).map(|_| ()),
        10..=12 => reader.seek(SeekFrom::Current(8)).map(|_| ()),
        8 => skip_string(reader),
        9 if depth < 4 => {
            let item_type = read_u32(reader)?;
            let count = read_u64(reader)?;
            for _ in 0..count {
                skip_value(reader, item_type, depth + 1)?;
            }
            Ok(())
        }
        _ => Err(bad()),
    }
}

fn skip_string<R: Read + Seek>(reader: &mut R) -> std::io::Result<()> {
    let len = read_u64(reader)?;
    let len = i64::try_from(len)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "string too long"))?;
    reader.seek(SeekFrom::Current(len)).map(|_| ())
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

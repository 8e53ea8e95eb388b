//! File formats shared by every stage: masks and values as NumPy `.npy`, values as text, JSON.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use npyz::WriterBuilder;
use serde::Serialize;

use crate::sparse::MaskBatch;
use crate::{Error, Result};

/// Writes `masks` as a `uint8` `.npy` of shape `[m, n]` (1 = kept).
pub fn write_masks_npy(path: &Path, masks: &MaskBatch) -> Result<()> {
    let m = masks.len() as u64;
    let n = masks.n_players() as u64;
    let file = File::create(path).map_err(|e| Error::file(path, e))?;
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[m, n])
        .writer(BufWriter::new(file))
        .begin_nd()
        .map_err(|e| Error::file(path, e))?;
    w.extend(masks.to_u8()).map_err(|e| Error::file(path, e))?;
    w.finish().map_err(|e| Error::file(path, e))?;
    Ok(())
}

/// Reads a `[m, n]` mask matrix from `.npy` (dtype `uint8` or `bool`, entries 0/1).
pub fn read_masks_npy(path: &Path) -> Result<MaskBatch> {
    let npy = open_npy(path)?;
    let shape = npy.shape().to_vec();
    if shape.len() != 2 {
        return Err(Error::file(
            path,
            format!("masks must be 2-D [m, n], found shape {shape:?}"),
        ));
    }
    let dtype = dtype_name(&npy);
    let data: Vec<u8> = match dtype.as_str() {
        "|u1" => npy.into_vec::<u8>().map_err(|e| Error::file(path, e))?,
        "|b1" => npy
            .into_vec::<bool>()
            .map_err(|e| Error::file(path, e))?
            .into_iter()
            .map(u8::from)
            .collect(),
        other => {
            return Err(Error::file(
                path,
                format!("masks must be uint8 or bool, found dtype {other}"),
            ))
        }
    };
    Ok(MaskBatch::from_u8(
        shape[1] as usize,
        &data,
        &path.display().to_string(),
    )?)
}

/// Writes `values` as a `float64` `.npy` of shape `[m]`.
pub fn write_values_npy(path: &Path, values: &[f64]) -> Result<()> {
    let file = File::create(path).map_err(|e| Error::file(path, e))?;
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(&[values.len() as u64])
        .writer(BufWriter::new(file))
        .begin_nd()
        .map_err(|e| Error::file(path, e))?;
    w.extend(values.iter().copied())
        .map_err(|e| Error::file(path, e))?;
    w.finish().map_err(|e| Error::file(path, e))?;
    Ok(())
}

/// Reads values: a `float32`/`float64` `.npy` of shape `[m]` (or `[m, 1]`), or a text file with one
/// number per line (blank lines and `#` comments skipped). Non-finite values are returned as read.
pub fn read_values(path: &Path) -> Result<Vec<f64>> {
    let mut head = [0u8; 6];
    let is_npy = File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map(|k| k == 6 && &head == b"\x93NUMPY")
        .map_err(|e| Error::file(path, e))?;
    if is_npy {
        read_values_npy(path)
    } else {
        read_values_text(path)
    }
}

fn read_values_npy(path: &Path) -> Result<Vec<f64>> {
    let npy = open_npy(path)?;
    let shape = npy.shape().to_vec();
    let ok_shape = shape.len() == 1 || (shape.len() == 2 && shape[1] == 1);
    if !ok_shape {
        return Err(Error::file(
            path,
            format!("values must have shape [m], found {shape:?}"),
        ));
    }
    let dtype = dtype_name(&npy);
    match dtype.as_str() {
        "<f8" => npy.into_vec::<f64>().map_err(|e| Error::file(path, e)),
        "<f4" => Ok(npy
            .into_vec::<f32>()
            .map_err(|e| Error::file(path, e))?
            .into_iter()
            .map(f64::from)
            .collect()),
        other => Err(Error::file(
            path,
            format!("values must be float32 or float64, found dtype {other}"),
        )),
    }
}

fn read_values_text(path: &Path) -> Result<Vec<f64>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
    let mut out = Vec::new();
    for (lineno, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let v: f64 = line.parse().map_err(|_| {
            Error::file(
                path,
                format!("line {}: `{line}` is not a number", lineno + 1),
            )
        })?;
        out.push(v);
    }
    Ok(out)
}

/// The dtype as NumPy writes it in `descr`, without quotes (e.g. `<f8`, `|u1`).
fn dtype_name<R: Read>(npy: &npyz::NpyFile<R>) -> String {
    npy.dtype().descr().trim_matches('\'').to_string()
}

fn open_npy(path: &Path) -> Result<npyz::NpyFile<BufReader<File>>> {
    let file = File::open(path).map_err(|e| Error::file(path, e))?;
    npyz::NpyFile::new(BufReader::new(file))
        .map_err(|e| Error::file(path, format!("not a valid .npy file: {e}")))
}

/// Writes `value` as pretty JSON with a trailing newline.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let file = File::create(path).map_err(|e| Error::file(path, e))?;
    let mut w = BufWriter::new(file);
    serde_json::to_writer_pretty(&mut w, value).map_err(|e| Error::file(path, e))?;
    w.write_all(b"\n").map_err(|e| Error::file(path, e))?;
    w.flush().map_err(|e| Error::file(path, e))
}

/// Writes `text` to `path`, naming the file on failure.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::file(path, e))
}

/// Reads JSON from `path` into `T`, naming the file and the serde error on failure.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::file(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_values_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mut masks = MaskBatch::new(5);
        masks.push_bools(&[true, false, true, true, false]);
        masks.push_bools(&[false; 5]);
        let p = dir.path().join("masks.npy");
        write_masks_npy(&p, &masks).unwrap();
        assert_eq!(read_masks_npy(&p).unwrap(), masks);

        let values = vec![0.5, -1.25, f64::NAN];
        let v = dir.path().join("values.npy");
        write_values_npy(&v, &values).unwrap();
        let back = read_values(&v).unwrap();
        assert_eq!(back[..2], values[..2]);
        assert!(back[2].is_nan());
    }

    #[test]
    fn text_values_name_the_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.txt");
        std::fs::write(&p, "1.0\n# comment\n\n2e-3\nabc\n").unwrap();
        let err = read_values(&p).unwrap_err().to_string();
        assert!(err.contains("line 5"), "{err}");
        std::fs::write(&p, "1.0\n2e-3\n").unwrap();
        assert_eq!(read_values(&p).unwrap(), vec![1.0, 2e-3]);
    }

    #[test]
    fn wrong_dtype_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.npy");
        write_values_npy(&p, &[1.0, 0.0]).unwrap();
        let err = read_masks_npy(&p).unwrap_err().to_string();
        assert!(err.contains("2-D") || err.contains("dtype"), "{err}");
    }
}

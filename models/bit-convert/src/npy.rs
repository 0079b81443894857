//! Reading and writing NumPy `.npy` arrays and `.npz` archives of float32.
//!
//! Only the subset that BiT checkpoints and the golden files use is
//! supported: little-endian `<f4` (float32) or `<f8` (float64, converted to
//! float32 on read), C order, any rank. The format is described in NumPy's
//! `numpy.lib.format` documentation: a magic string, a version, a header
//! length and a Python dict literal with `descr`, `fortran_order` and
//! `shape`.

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Seek, Write};
use std::path::Path;

use crate::ConvertError;

const MAGIC: &[u8] = b"\x93NUMPY";

/// A dense float32 array in C (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Values in row-major order; `data.len()` is the product of `shape`.
    pub data: Vec<f32>,
}

impl Array {
    /// Creates an array, checking that `data` fills `shape`.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Array, ConvertError> {
        let expected: usize = shape.iter().product();
        if expected != data.len() {
            return Err(ConvertError::InvalidArray {
                key: String::new(),
                reason: format!(
                    "shape {} needs {expected} values but {} were given",
                    format_shape(&shape),
                    data.len()
                ),
            });
        }
        Ok(Array { shape, data })
    }

    /// Returns the number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Returns true when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// Formats a shape the way NumPy users read it, for example `[7, 7, 3, 64]`.
pub fn format_shape(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("[{}]", dims.join(", "))
}

/// Parses one `.npy` file. `key` only labels errors.
pub fn parse_npy(key: &str, bytes: &[u8]) -> Result<Array, ConvertError> {
    let invalid = |reason: String| ConvertError::InvalidArray {
        key: key.to_string(),
        reason,
    };

    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(invalid("missing the \\x93NUMPY magic string".into()));
    }
    let major = bytes[6];
    let (header_len, header_start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(invalid("truncated header".into()));
            }
            let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            (len as usize, 12)
        }
        other => return Err(invalid(format!("unsupported .npy format version {other}"))),
    };
    let data_start = header_start + header_len;
    if bytes.len() < data_start {
        return Err(invalid("truncated header".into()));
    }
    let header = std::str::from_utf8(&bytes[header_start..data_start])
        .map_err(|_| invalid("header is not UTF-8".into()))?;

    let descr = header_value(header, "descr")
        .and_then(|v| v.strip_prefix('\''))
        .and_then(|v| v.split('\'').next())
        .ok_or_else(|| invalid(format!("header has no 'descr': {header}")))?;
    let fortran_order = header_value(header, "fortran_order")
        .ok_or_else(|| invalid(format!("header has no 'fortran_order': {header}")))?;
    if fortran_order.starts_with("True") {
        return Err(invalid(
            "Fortran-order arrays are not supported; save with np.ascontiguousarray".into(),
        ));
    }
    let shape = parse_shape(header)
        .ok_or_else(|| invalid(format!("header has no valid 'shape': {header}")))?;

    let count: usize = shape.iter().product();
    let payload = &bytes[data_start..];
    let data = match descr {
        "<f4" => {
            if payload.len() != count * 4 {
                return Err(invalid(format!(
                    "shape {} needs {} bytes of float32 but the file has {}",
                    format_shape(&shape),
                    count * 4,
                    payload.len()
                )));
            }
            payload
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        }
        "<f8" => {
            if payload.len() != count * 8 {
                return Err(invalid(format!(
                    "shape {} needs {} bytes of float64 but the file has {}",
                    format_shape(&shape),
                    count * 8,
                    payload.len()
                )));
            }
            payload
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().expect("chunk of 8 bytes")) as f32)
                .collect()
        }
        other => {
            return Err(invalid(format!(
                "dtype {other} is not supported; expected little-endian float32 ('<f4')"
            )));
        }
    };
    Ok(Array { shape, data })
}

/// Returns the text after `'name':` in a header dict, trimmed at the start.
fn header_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    let pattern = format!("'{name}':");
    let start = header.find(&pattern)? + pattern.len();
    Some(header[start..].trim_start())
}

fn parse_shape(header: &str) -> Option<Vec<usize>> {
    let value = header_value(header, "shape")?.strip_prefix('(')?;
    let inner = &value[..value.find(')')?];
    inner
        .split(',')
        .map(str::trim)
        .filter(|dim| !dim.is_empty())
        .map(|dim| dim.parse::<usize>().ok())
        .collect()
}

/// Serialises an array as a version 1.0 `.npy` file of `<f4`.
pub fn write_npy(array: &Array) -> Vec<u8> {
    let shape = match array.shape.len() {
        1 => format!("({},)", array.shape[0]),
        _ => {
            let dims: Vec<String> = array.shape.iter().map(usize::to_string).collect();
            format!("({})", dims.join(", "))
        }
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // The header, including the 10-byte preamble and the final newline, is
    // padded with spaces to a multiple of 64 bytes so the data is aligned.
    let unpadded = MAGIC.len() + 4 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');

    let mut out = Vec::with_capacity(10 + header.len() + array.data.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for value in &array.data {
        out.extend_from_slice(&value.to_le_bytes());
    }
    out
}

/// Reads every `<key>.npy` member of an `.npz` archive, keyed without the
/// `.npy` suffix.
pub fn read_npz_bytes(bytes: &[u8]) -> Result<BTreeMap<String, Array>, ConvertError> {
    read_npz_from(Cursor::new(bytes))
}

/// Reads an `.npz` file from disk; see [`read_npz_bytes`].
pub fn read_npz(path: &Path) -> Result<BTreeMap<String, Array>, ConvertError> {
    let file = std::fs::File::open(path).map_err(|source| ConvertError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_npz_from(std::io::BufReader::new(file))
}

fn read_npz_from<R: Read + Seek>(reader: R) -> Result<BTreeMap<String, Array>, ConvertError> {
    let mut archive = zip::ZipArchive::new(reader)?;
    let mut arrays = BTreeMap::new();
    for index in 0..archive.len() {
        let mut member = archive.by_index(index)?;
        let name = member.name()?.into_owned();
        let Some(key) = name.strip_suffix(".npy") else {
            return Err(ConvertError::InvalidArray {
                key: name,
                reason: "an .npz member must be a .npy file".into(),
            });
        };
        let key = key.to_string();
        let mut bytes = Vec::with_capacity(member.size() as usize);
        member
            .read_to_end(&mut bytes)
            .map_err(|source| ConvertError::InvalidArray {
                key: key.clone(),
                reason: format!("failed to read the archive member: {source}"),
            })?;
        let array = parse_npy(&key, &bytes)?;
        arrays.insert(key, array);
    }
    Ok(arrays)
}

/// Writes arrays as an uncompressed `.npz` archive, the layout `np.savez`
/// produces.
pub fn write_npz<W: Write + Seek>(
    writer: W,
    arrays: &BTreeMap<String, Array>,
) -> Result<(), ConvertError> {
    let mut zip = zip::ZipWriter::new(writer);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    for (key, array) in arrays {
        zip.start_file(format!("{key}.npy"), options)?;
        zip.write_all(&write_npy(array))
            .map_err(|source| ConvertError::InvalidArray {
                key: key.clone(),
                reason: format!("failed to write the archive member: {source}"),
            })?;
    }
    zip.finish()?;
    Ok(())
}

/// Writes arrays to an `.npz` file on disk.
pub fn write_npz_file(path: &Path, arrays: &BTreeMap<String, Array>) -> Result<(), ConvertError> {
    let file = std::fs::File::create(path).map_err(|source| ConvertError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    write_npz(std::io::BufWriter::new(file), arrays)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_round_trip_keeps_shape_and_values() {
        let array = Array::new(vec![2, 3], vec![1.0, -2.0, 3.5, 0.0, 1e-7, 42.0]).unwrap();
        let bytes = write_npy(&array);
        assert_eq!(
            (bytes.len() - array.len() * 4) % 64,
            0,
            "data must start 64-byte aligned"
        );
        assert_eq!(parse_npy("x", &bytes).unwrap(), array);
    }

    #[test]
    fn npy_round_trip_one_dimensional() {
        let array = Array::new(vec![4], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(parse_npy("x", &write_npy(&array)).unwrap(), array);
    }

    #[test]
    fn npy_rejects_integer_dtype() {
        let mut bytes = write_npy(&Array::new(vec![1], vec![0.0]).unwrap());
        let position = bytes.windows(3).position(|w| w == b"<f4").unwrap();
        bytes[position..position + 3].copy_from_slice(b"<i4");
        let error = parse_npy("some/key", &bytes).unwrap_err().to_string();
        assert!(error.contains("some/key"), "{error}");
        assert!(error.contains("<i4"), "{error}");
    }

    #[test]
    fn npz_round_trip_keeps_every_key() {
        let mut arrays = BTreeMap::new();
        arrays.insert(
            "a/b".to_string(),
            Array::new(vec![2], vec![1.0, 2.0]).unwrap(),
        );
        arrays.insert("c".to_string(), Array::new(vec![1, 1], vec![3.0]).unwrap());
        let mut buffer = Cursor::new(Vec::new());
        write_npz(&mut buffer, &arrays).unwrap();
        assert_eq!(read_npz_bytes(buffer.get_ref()).unwrap(), arrays);
    }
}

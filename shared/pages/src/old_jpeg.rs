//! Old-style JPEG (TIFF compression 6) pages whose JPEGInterchangeFormat stream lacks
//! the scan: the stream is rebuilt from the header or the table tags and the strips.

use tiff::tags::Tag;

use crate::PageErrorKind;
use crate::tiff_pages::{TiffDecoder, tiff_error_kind};

const TAG_JPEG_Q_TABLES: Tag = Tag::Unknown(519);
const TAG_JPEG_DC_TABLES: Tag = Tag::Unknown(520);
const TAG_JPEG_AC_TABLES: Tag = Tag::Unknown(521);

/// Builds one JPEG stream from an old-style JPEG header (tables and frame header, no
/// scan) and strips that each contain an entropy-coded segment restarted at the strip
/// boundary. A DRI segment sets the restart interval to the MCUs of one strip, and RST
/// markers join the strips.
pub fn join_old_jpeg_strips(
    header: &[u8],
    scan_header: Option<&[u8]>,
    strips: &[&[u8]],
    width: u32,
    rows_per_strip: u32,
) -> Result<Vec<u8>, PageErrorKind> {
    let unsupported = |detail: &str| PageErrorKind::Unsupported {
        feature: format!("TIFF compression 6 (old-style JPEG) with the scan in strips and {detail}"),
    };
    let (max_h, max_v) = jpeg_max_sampling(header).ok_or_else(|| unsupported("no readable SOF0 frame header"))?;
    let (mcu_width, mcu_height) = (8 * u32::from(max_h), 8 * u32::from(max_v));
    if rows_per_strip % mcu_height != 0 && strips.len() > 1 {
        return Err(unsupported(&format!("{rows_per_strip} rows per strip, not a multiple of the {mcu_height}-row MCU")));
    }
    let interval = width.div_ceil(mcu_width) * (rows_per_strip / mcu_height).max(1);
    let interval = u16::try_from(interval).map_err(|_| unsupported(&format!("{interval} MCUs per strip")))?;

    let mut bytes = Vec::with_capacity(header.len() + 8 + strips.iter().map(|strip| strip.len() + 2).sum::<usize>());
    bytes.extend_from_slice(header);
    if strips.len() > 1 {
        bytes.extend_from_slice(&[0xFF, 0xDD, 0x00, 0x04]);
        bytes.extend_from_slice(&interval.to_be_bytes());
    }
    if let Some(scan_header) = scan_header {
        bytes.extend_from_slice(scan_header);
    }
    for (index, strip) in strips.iter().enumerate() {
        if index > 0 {
            bytes.extend_from_slice(&[0xFF, 0xD0 + ((index - 1) % 8) as u8]);
        }
        bytes.extend_from_slice(strip);
    }
    bytes.extend_from_slice(&[0xFF, 0xD9]);
    Ok(bytes)
}

/// Builds the JPEG header (SOI, DQT, SOF0 and DHT segments) of an old-style JPEG page
/// that stores its tables in the JPEGQTables, JPEGDCTables and JPEGACTables tags
/// instead of at JPEGInterchangeFormat.
pub fn old_jpeg_header_from_tags(
    decoder: &mut TiffDecoder,
    object: &[u8],
    width: u32,
    height: u32,
) -> Result<Vec<u8>, PageErrorKind> {
    let unsupported = |detail: String| PageErrorKind::Unsupported {
        feature: format!("TIFF compression 6 (old-style JPEG) without JPEGInterchangeFormat and {detail}"),
    };
    let offsets = |decoder: &mut TiffDecoder, tag: Tag| -> Result<Vec<u64>, PageErrorKind> {
        Ok(decoder.find_tag(tag).map_err(tiff_error_kind)?.map_or(Ok(Vec::new()), |value| value.into_u64_vec()).map_err(tiff_error_kind)?)
    };
    let quantization = offsets(decoder, TAG_JPEG_Q_TABLES)?;
    let dc_tables = offsets(decoder, TAG_JPEG_DC_TABLES)?;
    let ac_tables = offsets(decoder, TAG_JPEG_AC_TABLES)?;
    let components = quantization.len();
    if !matches!(components, 1 | 3) || dc_tables.len() != components || ac_tables.len() != components {
        return Err(unsupported(format!(
            "{components} quantization, {} DC and {} AC tables (1 or 3 of each expected)",
            dc_tables.len(),
            ac_tables.len()
        )));
    }
    let (width, height) = (
        u16::try_from(width).map_err(|_| unsupported(format!("width {width}")))?,
        u16::try_from(height).map_err(|_| unsupported(format!("height {height}")))?,
    );
    let subsampling = match decoder.find_tag_unsigned_vec::<u16>(Tag::ChromaSubsampling).map_err(tiff_error_kind)?.as_deref() {
        Some([x, y, ..]) => ((*x as u8) << 4) | (*y as u8 & 0x0F),
        _ => 0x22,
    };

    let table = |offset: u64, length: usize| -> Result<&[u8], PageErrorKind> {
        usize::try_from(offset)
            .ok()
            .and_then(|start| object.get(start..start.checked_add(length)?))
            .ok_or_else(|| PageErrorKind::Corrupt {
                reason: format!("old-style JPEG table at offset {offset} runs past the end of the file"),
            })
    };
    let mut header = vec![0xFF, 0xD8];
    for (index, &offset) in quantization.iter().enumerate() {
        header.extend_from_slice(&[0xFF, 0xDB, 0x00, 67, index as u8]);
        header.extend_from_slice(table(offset, 64)?);
    }
    header.extend_from_slice(&[0xFF, 0xC0]);
    header.extend_from_slice(&(8 + 3 * components as u16).to_be_bytes());
    header.push(8);
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&width.to_be_bytes());
    header.push(components as u8);
    for index in 0..components {
        let sampling = if index == 0 && components == 3 { subsampling } else { 0x11 };
        header.extend_from_slice(&[index as u8 + 1, sampling, index as u8]);
    }
    for (class, tables) in [(0x00, &dc_tables), (0x10, &ac_tables)] {
        for (index, &offset) in tables.iter().enumerate() {
            let counts = table(offset, 16)?;
            let values = counts.iter().map(|&count| usize::from(count)).sum::<usize>();
            let whole = table(offset, 16 + values)?;
            header.extend_from_slice(&[0xFF, 0xC4]);
            header.extend_from_slice(&(3 + whole.len() as u16).to_be_bytes());
            header.push(class | index as u8);
            header.extend_from_slice(whole);
        }
    }
    Ok(header)
}

/// Returns the component count of the SOF0 frame header in `header`.
pub fn frame_components(header: &[u8]) -> u8 {
    header
        .windows(2)
        .position(|marker| marker == [0xFF, 0xC0])
        .and_then(|at| header.get(at + 9).copied())
        .unwrap_or(1)
}

/// Builds an SOS segment for a baseline scan of all `components`, component `i` using
/// DC and AC table `i`.
pub fn scan_header(components: u8) -> Vec<u8> {
    let mut segment = vec![0xFF, 0xDA];
    segment.extend_from_slice(&(6 + 2 * u16::from(components)).to_be_bytes());
    segment.push(components);
    for index in 0..components {
        segment.extend_from_slice(&[index + 1, (index << 4) | index]);
    }
    segment.extend_from_slice(&[0, 63, 0]);
    segment
}

/// Returns the largest horizontal and vertical sampling factors of a baseline (SOF0)
/// JPEG frame header.
fn jpeg_max_sampling(header: &[u8]) -> Option<(u8, u8)> {
    let at = header.windows(2).position(|marker| marker == [0xFF, 0xC0])?;
    let frame = header.get(at + 4..)?;
    let components = usize::from(*frame.get(5)?);
    let mut max = (1, 1);
    for index in 0..components {
        let factors = *frame.get(6 + index * 3 + 1)?;
        max = (max.0.max(factors >> 4), max.1.max(factors & 0x0F));
    }
    (max.0 > 0 && max.1 > 0).then_some(max)
}

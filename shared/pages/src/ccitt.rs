//! CCITT Group 3 and Group 4 TIFF strips, decoded with `hayro-ccitt`.

use std::time::Instant;

use hayro_ccitt::{DecodeSettings, DecoderContext, EncodingMode};

use crate::PageErrorKind;

/// TIFF Compression values for CCITT data.
pub const COMPRESSION_MODIFIED_HUFFMAN: u16 = 2;
pub const COMPRESSION_GROUP3: u16 = 3;
pub const COMPRESSION_GROUP4: u16 = 4;

/// T4Options bit 0: rows may be 2-D coded (Group 3 2-D, also called MR).
const T4_TWO_DIMENSIONAL: u32 = 1;
/// T4Options bit 1 and T6Options bit 1: uncompressed mode is allowed.
const UNCOMPRESSED_MODE: u32 = 2;

/// CCITT-related fields of one TIFF image file directory.
#[derive(Debug, Clone)]
pub struct CcittParams {
    pub width: u32,
    pub height: u32,
    pub rows_per_strip: u32,
    pub compression: u16,
    /// T4Options (tag 292) for Group 3, T6Options (tag 293) for Group 4.
    pub coding_options: u32,
    /// FillOrder=2: the lowest bit of each byte comes first.
    pub lsb_first: bool,
    /// PhotometricInterpretation=1 (min-is-black): a 0 bit (CCITT "white" code) is black.
    pub min_is_black: bool,
}

/// Collects decoded rows into an 8-bit buffer (0 black, 255 white).
struct RowSink<'a> {
    pixels: &'a mut [u8],
    width: usize,
    /// Index of the next row within the whole page.
    next_row: usize,
    /// Rows this strip may write; later rows are ignored.
    end_row: usize,
    /// Value written for pixels coded black.
    black: u8,
}

impl hayro_ccitt::Decoder for RowSink<'_> {
    fn push_row(&mut self, changes: &[u32]) {
        if self.next_row >= self.end_row {
            return;
        }
        let start = self.next_row * self.width;
        let row = &mut self.pixels[start..start + self.width];
        // Each row starts white: pixels from changes[0] to changes[1] are black,
        // changes[2] to changes[3] again, and an odd count ends the row black.
        for span in changes.chunks(2) {
            let from = (span[0] as usize).min(self.width);
            let to = span.get(1).map_or(self.width, |&end| (end as usize).min(self.width));
            row[from..to].fill(self.black);
        }
        self.next_row += 1;
    }
}

/// Decodes every strip of a CCITT page into one 8-bit gray buffer of `width x height`.
///
/// `strips` are the raw strip bytes in order. Fails with the row where data ran out
/// when a strip yields fewer rows than the tags declare, and with `TimedOut` when
/// `deadline`, if any, passes between strips.
pub fn decode_strips(
    params: &CcittParams,
    strips: &[&[u8]],
    deadline: Option<Instant>,
    limit: std::time::Duration,
    started: Instant,
) -> Result<Vec<u8>, PageErrorKind> {
    let encoding = match params.compression {
        COMPRESSION_GROUP4 => EncodingMode::Group4,
        COMPRESSION_GROUP3 if params.coding_options & T4_TWO_DIMENSIONAL != 0 => {
            EncodingMode::Group3_2D
        }
        COMPRESSION_GROUP3 | COMPRESSION_MODIFIED_HUFFMAN => EncodingMode::Group3_1D,
        other => {
            return Err(PageErrorKind::Unsupported {
                feature: format!("TIFF compression {other} as CCITT"),
            });
        }
    };
    if params.compression != COMPRESSION_MODIFIED_HUFFMAN
        && params.coding_options & UNCOMPRESSED_MODE != 0
    {
        return Err(PageErrorKind::Unsupported {
            feature: format!(
                "CCITT uncompressed mode (T4Options/T6Options {})",
                params.coding_options
            ),
        });
    }

    let width = params.width as usize;
    let height = params.height as usize;
    let rows_per_strip = (params.rows_per_strip as usize).clamp(1, height.max(1));
    let (white, black) = if params.min_is_black { (0, 255) } else { (255, 0) };
    let mut pixels = vec![white; width * height];

    let expected_strips = height.div_ceil(rows_per_strip);
    if strips.len() < expected_strips {
        return Err(PageErrorKind::Corrupt {
            reason: format!(
                "{} CCITT strips for {height} rows at {rows_per_strip} rows per strip, {expected_strips} expected",
                strips.len()
            ),
        });
    }

    let mut reversed = Vec::new();
    for (index, strip) in strips.iter().take(expected_strips).enumerate() {
        if deadline.is_some_and(|deadline| Instant::now() > deadline) {
            return Err(PageErrorKind::TimedOut {
                elapsed: started.elapsed(),
                limit,
            });
        }
        let first_row = index * rows_per_strip;
        let end_row = (first_row + rows_per_strip).min(height);

        let data: &[u8] = if params.lsb_first {
            reversed.clear();
            reversed.extend(strip.iter().map(|byte| byte.reverse_bits()));
            &reversed
        } else {
            strip
        };

        let settings = DecodeSettings {
            columns: params.width,
            rows: (end_row - first_row) as u32,
            end_of_block: true,
            // hayro-ccitt detects EOL codes itself; TIFF writers differ on whether
            // Group 3 rows carry them (libtiff's own test file has none).
            end_of_line: false,
            // Compression 2 (Modified Huffman) starts every row on a byte boundary.
            rows_are_byte_aligned: params.compression == COMPRESSION_MODIFIED_HUFFMAN,
            encoding,
            strict: false,
        };
        let mut sink = RowSink {
            pixels: &mut pixels,
            width,
            next_row: first_row,
            end_row,
            black,
        };
        let outcome = hayro_ccitt::decode(data, &mut sink, &mut DecoderContext::new(settings));
        if sink.next_row < end_row {
            let cause = match outcome {
                Err(error) => format!(" ({error})"),
                Ok(_) => String::new(),
            };
            return Err(PageErrorKind::Corrupt {
                reason: format!(
                    "CCITT data ends early at row {} of {height}{cause}",
                    sink.next_row
                ),
            });
        }
    }
    Ok(pixels)
}

//! Pixel conversions for TIFF layouts that `tiff` 0.11 rejects, applied to the bytes of
//! uncompressed or PackBits strips: gray of any depth up to 16 bits, CIELab and
//! subsampled YCbCr.

use crate::convert::ycbcr_to_rgb;

/// Expands gray samples of `bits` (up to 16) per pixel, packed most significant bit
/// first with rows padded to whole bytes as TIFF stores them, to 8 bits.
pub fn unpack_gray(packed: &[u8], width: usize, height: usize, bits: u8) -> Vec<u8> {
    let bits = usize::from(bits.clamp(1, 16));
    let max = (1u32 << bits) - 1;
    let row_bytes = (width * bits).div_ceil(8);
    let mut out = Vec::with_capacity(width * height);
    for row in packed.chunks(row_bytes).take(height) {
        for x in 0..width {
            let mut value = 0u32;
            for bit in x * bits..(x + 1) * bits {
                let byte = row.get(bit / 8).copied().unwrap_or(0);
                value = (value << 1) | u32::from((byte >> (7 - bit % 8)) & 1);
            }
            out.push(((value * 255 + max / 2) / max) as u8);
        }
    }
    out
}

/// Converts 8-bit TIFF CIELab pixels (L* scaled to 0..=255, a* and b* signed bytes) to
/// sRGB, taking D65 as the white point.
// NOTE: the WhitePoint tag is not read; TIFF writers use D50 or D65, and the
// difference is a slight colour cast, not a change in the page's content.
pub fn cielab_to_rgb(packed: &[u8], pixels: usize) -> Vec<u8> {
    const WHITE: [f64; 3] = [0.950_47, 1.0, 1.088_83];
    let mut out = Vec::with_capacity(pixels * 3);
    for lab in packed.chunks_exact(3).take(pixels) {
        let l = f64::from(lab[0]) * 100.0 / 255.0;
        let a = f64::from(lab[1] as i8);
        let b = f64::from(lab[2] as i8);

        let fy = (l + 16.0) / 116.0;
        let fx = fy + a / 500.0;
        let fz = fy - b / 200.0;
        let inverse = |t: f64| if t > 6.0 / 29.0 { t * t * t } else { 3.0 * (6.0f64 / 29.0).powi(2) * (t - 4.0 / 29.0) };
        let (x, y, z) = (WHITE[0] * inverse(fx), WHITE[1] * inverse(fy), WHITE[2] * inverse(fz));

        let linear = [
            3.240_454_2 * x - 1.537_138_5 * y - 0.498_531_4 * z,
            -0.969_266_0 * x + 1.876_010_8 * y + 0.041_556_0 * z,
            0.055_643_4 * x - 0.204_025_9 * y + 1.057_225_2 * z,
        ];
        for channel in linear {
            let c = channel.clamp(0.0, 1.0);
            let encoded = if c <= 0.003_130_8 { 12.92 * c } else { 1.055 * c.powf(1.0 / 2.4) - 0.055 };
            out.push((encoded * 255.0).round() as u8);
        }
    }
    out
}

/// The data-unit layout of subsampled YCbCr (TIFF 6.0 section 21): each block of
/// `sub_x x sub_y` pixels stores its luma samples row by row, then one Cb and one Cr.
pub struct SubsampledLayout {
    width: usize,
    sub_x: usize,
    sub_y: usize,
    blocks_across: usize,
}

impl SubsampledLayout {
    pub fn new(width: usize, sub_x: usize, sub_y: usize) -> Self {
        Self {
            width,
            sub_x,
            sub_y,
            blocks_across: width.div_ceil(sub_x),
        }
    }

    fn block_bytes(&self) -> usize {
        self.sub_x * self.sub_y + 2
    }

    /// Returns the bytes that `rows` pixel rows take.
    pub fn bytes_for_rows(&self, rows: usize) -> usize {
        rows.div_ceil(self.sub_y) * self.blocks_across * self.block_bytes()
    }

    /// Converts `height` rows of packed blocks to interleaved 8-bit RGB.
    pub fn to_rgb(&self, packed: &[u8], height: usize) -> Vec<u8> {
        let mut out = vec![0u8; self.width * height * 3];
        let block_rows = height.div_ceil(self.sub_y);
        let blocks = packed.chunks_exact(self.block_bytes());
        for (index, block) in blocks.take(block_rows * self.blocks_across).enumerate() {
            let (block_x, block_y) = (index % self.blocks_across, index / self.blocks_across);
            let (cb, cr) = (block[self.sub_x * self.sub_y], block[self.sub_x * self.sub_y + 1]);
            for dy in 0..self.sub_y {
                for dx in 0..self.sub_x {
                    let (x, y) = (block_x * self.sub_x + dx, block_y * self.sub_y + dy);
                    if x >= self.width || y >= height {
                        continue;
                    }
                    let at = (y * self.width + x) * 3;
                    out[at..at + 3].copy_from_slice(&ycbcr_to_rgb(block[dy * self.sub_x + dx], cb, cr));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpack_gray_twelve_bit() {
        // Two 12-bit samples, 0xFFF and 0x800, in three bytes.
        assert_eq!(unpack_gray(&[0xFF, 0xF8, 0x00], 2, 1, 12), vec![255, 128]);
    }

    #[test]
    fn cielab_white_and_black() {
        assert_eq!(cielab_to_rgb(&[255, 0, 0, 0, 0, 0], 2), vec![255, 255, 255, 0, 0, 0]);
    }

    #[test]
    fn subsampled_layout_four_two_two() {
        // A 3x1 image at 2x1 subsampling: two blocks, the second half outside the image.
        let layout = SubsampledLayout::new(3, 2, 1);
        assert_eq!(layout.bytes_for_rows(1), 8);
        let rgb = layout.to_rgb(&[10, 20, 128, 128, 30, 99, 128, 128], 1);
        assert_eq!(rgb, vec![10, 10, 10, 20, 20, 20, 30, 30, 30]);
    }
}

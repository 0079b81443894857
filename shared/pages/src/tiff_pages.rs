//! TIFF and BigTIFF: walks the IFD chain with the `tiff` crate and decodes one page per
//! IFD. CCITT strips go to `hayro-ccitt`, old-style JPEG to the `image` crate's JPEG
//! decoder, everything else to `tiff`'s own decoder.

use std::io::Cursor;
use std::time::Instant;

use image::metadata::Orientation;
use image::DynamicImage;
use tiff::decoder::{Decoder, DecodingResult, Limits as TiffLimits, ifd::Value};
use tiff::tags::Tag;
use tiff::{ColorType, TiffError};

use crate::ccitt::{self, CcittParams};
use crate::old_jpeg::{frame_components, join_old_jpeg_strips, old_jpeg_header_from_tags, scan_header};
use crate::tiff_plain;
use crate::convert::{
    cmyk_to_rgb, finish_page, gray_from_vec, rgb_from_vec, unpack_samples, ycbcr_to_rgb,
};
use crate::{ObjectBytes, Context, Page, PageError, PageErrorKind, Step};

const TAG_T4_OPTIONS: Tag = Tag::Unknown(292);
const TAG_T6_OPTIONS: Tag = Tag::Unknown(293);
const TAG_JPEG_INTERCHANGE_FORMAT: Tag = Tag::Unknown(513);
const TAG_JPEG_INTERCHANGE_FORMAT_LENGTH: Tag = Tag::Unknown(514);

const COMPRESSION_NONE: u16 = 1;
const COMPRESSION_OLD_JPEG: u16 = 6;
const COMPRESSION_PACKBITS: u16 = 32773;
const PHOTOMETRIC_MIN_IS_WHITE: u16 = 0;
const PHOTOMETRIC_MIN_IS_BLACK: u16 = 1;
const PHOTOMETRIC_PALETTE: u16 = 3;
const PHOTOMETRIC_YCBCR: u16 = 6;
const PHOTOMETRIC_CIELAB: u16 = 8;
const COMPRESSION_JPEG: u16 = 7;
const RESOLUTION_UNIT_CENTIMETER: u16 = 3;
const RESOLUTION_UNIT_NONE: u16 = 1;

/// The object's bytes, shared with the `tiff` decoder's reader without copying.
#[derive(Clone)]
pub(crate) struct SharedBytes(ObjectBytes);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

pub(crate) type TiffDecoder = Decoder<Cursor<SharedBytes>>;

pub struct TiffPages {
    bytes: ObjectBytes,
    decoder: TiffDecoder,
    /// Set once the end of the IFD chain is reached.
    page_count: Option<u32>,
    /// True while the decoder moves to the next IFD; a panic then leaves the chain
    /// position unknown, so iteration stops.
    walking: bool,
    stopped: bool,
}

impl TiffPages {
    pub fn open(context: &Context, bytes: ObjectBytes) -> Result<Self, PageError> {
        let limits = tiff_limits(context);
        let decoder = Decoder::new(Cursor::new(SharedBytes(bytes.clone())))
            .map_err(|error| context.object_error(tiff_error_kind(error)))?
            .with_limits(limits);
        let page_count = (!decoder.more_images()).then_some(1);
        Ok(Self {
            bytes,
            decoder,
            page_count,
            walking: false,
            stopped: false,
        })
    }

    pub fn page_count(&self) -> Option<u32> {
        self.page_count
    }

    pub fn has_more(&mut self) -> bool {
        !self.stopped && self.decoder.more_images()
    }

    /// Moves to the IFD of page `number` without decoding, so the next call decodes
    /// page `number + 1`. Used when an earlier reader of the object was abandoned
    /// there; a chain that cannot be walked that far ends the iteration.
    pub fn skip_to(&mut self, number: u32) {
        for _ in 1..number {
            if !self.decoder.more_images() || self.decoder.next_image().is_err() {
                self.stopped = true;
                return;
            }
        }
    }

    pub fn after_panic(&mut self) {
        if self.walking {
            self.stopped = true;
        }
    }

    pub fn next_page(&mut self, context: &Context, number: u32) -> Step {
        if self.stopped {
            return Step::Done;
        }
        // The decoder starts on IFD 0; every later page first moves to the next IFD.
        if number > 1 {
            if !self.decoder.more_images() {
                self.page_count = Some(number - 1);
                return Step::Done;
            }
            self.walking = true;
            let moved = self.decoder.next_image();
            self.walking = false;
            if let Err(error) = moved {
                let kind = tiff_error_kind(error);
                // A failed directory read leaves no pointer to the following IFD.
                if self.decoder.more_images() {
                    return Step::Page(Err(kind));
                }
                self.page_count = Some(number);
                return Step::LastPage(Err(kind));
            }
        }

        let result = self.decode_current(context, number);
        if !self.decoder.more_images() {
            self.page_count = Some(number);
            return Step::LastPage(result);
        }
        Step::Page(result)
    }

    fn decode_current(&mut self, context: &Context, number: u32) -> Result<Page, PageErrorKind> {
        let started = Instant::now();
        let (width, height) = self.decoder.dimensions().map_err(tiff_error_kind)?;
        context.check_pixels(width, height)?;

        let tags = PageTags::read(&mut self.decoder, height)?;
        let image = match tags.compression {
            ccitt::COMPRESSION_MODIFIED_HUFFMAN
            | ccitt::COMPRESSION_GROUP3
            | ccitt::COMPRESSION_GROUP4 => {
                match self.decode_ccitt(context, &tags, width, height, started) {
                    Ok(image) => image,
                    // hayro-ccitt 0.5 rejects some Group 4 pages that the `fax` crate
                    // inside `tiff` reads (libtiff's testfax4.tiff stops at row 461), so
                    // MSB-first Group 4 gets a second decoder before the page fails.
                    Err(error @ PageErrorKind::Corrupt { .. })
                        if tags.compression == ccitt::COMPRESSION_GROUP4 && tags.fill_order != 2 =>
                    {
                        self.decode_generic(width, height).map_err(|_| error)?
                    }
                    Err(error) => return Err(error),
                }
            }
            COMPRESSION_OLD_JPEG => self.decode_old_jpeg(context, &tags, width, height)?,
            _ if tags.photometric == PHOTOMETRIC_PALETTE => {
                self.decode_palette(&tags, width, height)?
            }
            _ if let Some(variant) = PlainVariant::of(&tags) => {
                self.decode_plain_variant(variant, &tags, width, height)?
            }
            _ => self.decode_generic(width, height)?,
        };
        Ok(finish_page(
            context,
            number,
            image,
            tags.dpi,
            tags.orientation,
        ))
    }

    fn decode_ccitt(
        &mut self,
        context: &Context,
        tags: &PageTags,
        width: u32,
        height: u32,
        started: Instant,
    ) -> Result<DynamicImage, PageErrorKind> {
        if tags.tiled {
            return Err(PageErrorKind::Unsupported {
                feature: "tiled CCITT TIFF".into(),
            });
        }
        if tags.bits_per_sample != 1 {
            return Err(PageErrorKind::Corrupt {
                reason: format!(
                    "CCITT page with BitsPerSample {}, 1 expected",
                    tags.bits_per_sample
                ),
            });
        }
        let coding_options = if tags.compression == ccitt::COMPRESSION_GROUP4 {
            find_u32(&mut self.decoder, TAG_T6_OPTIONS)?.unwrap_or(0)
        } else {
            find_u32(&mut self.decoder, TAG_T4_OPTIONS)?.unwrap_or(0)
        };
        let params = CcittParams {
            width,
            height,
            rows_per_strip: tags.rows_per_strip,
            compression: tags.compression,
            coding_options,
            lsb_first: tags.fill_order == 2,
            min_is_black: tags.photometric == PHOTOMETRIC_MIN_IS_BLACK,
        };
        let strips = self.strip_slices()?;
        let limit = context.limits.max_page_decode;
        // A limit too large to add to an instant (Duration::MAX) means no deadline.
        let deadline = started.checked_add(limit);
        let pixels = ccitt::decode_strips(&params, &strips, deadline, limit, started)?;
        gray_from_vec(width, height, pixels)
    }

    /// Returns each strip's bytes, cut short where the file is truncated.
    fn strip_slices(&mut self) -> Result<Vec<&[u8]>, PageErrorKind> {
        self.chunk_slices(Tag::StripOffsets, Tag::StripByteCounts)
    }

    /// Returns the bytes of each strip or tile named by an offsets and a byte counts
    /// tag, cut short where the file is truncated.
    fn chunk_slices(&mut self, offsets_tag: Tag, counts_tag: Tag) -> Result<Vec<&[u8]>, PageErrorKind> {
        let offsets = self
            .decoder
            .get_tag_u64_vec(offsets_tag)
            .map_err(tiff_error_kind)?;
        let counts = self
            .decoder
            .get_tag_u64_vec(counts_tag)
            .map_err(tiff_error_kind)?;
        let file_len = self.bytes.len() as u64;
        let slices = offsets
            .iter()
            .zip(counts.iter())
            .map(|(&offset, &count)| {
                let start = offset.min(file_len) as usize;
                let end = offset.saturating_add(count).min(file_len) as usize;
                &self.bytes[start..end]
            })
            .collect();
        Ok(slices)
    }

    /// Old-style JPEG (compression 6): decodes the JPEG stream that JPEGInterchangeFormat
    /// points to, which most writers fill with a complete JFIF file.
    fn decode_old_jpeg(
        &mut self,
        context: &Context,
        tags: &PageTags,
        width: u32,
        height: u32,
    ) -> Result<DynamicImage, PageErrorKind> {
        // A page in one tile is one JPEG frame of the tile's size, cropped to the page.
        let (frame_width, frame_height) = if tags.tiled {
            let tile_width = find_u32(&mut self.decoder, Tag::TileWidth)?.unwrap_or(0);
            let tile_height = find_u32(&mut self.decoder, Tag::TileLength)?.unwrap_or(0);
            if tile_width < width || tile_height < height {
                return Err(PageErrorKind::Unsupported {
                    feature: format!(
                        "TIFF compression 6 (old-style JPEG) in {tile_width}x{tile_height} tiles for a {width}x{height} page; only a page in one tile is decoded"
                    ),
                });
            }
            context.check_pixels(tile_width, tile_height)?;
            (tile_width, tile_height)
        } else {
            (width, height)
        };
        // A shared handle, so the strips can be read while the stream is borrowed.
        let object = self.bytes.clone();
        let from_tables;
        let interchange_format = find_u32(&mut self.decoder, TAG_JPEG_INTERCHANGE_FORMAT)?;
        let stream: &[u8] = match interchange_format {
            Some(start) => {
                let file_len = object.len();
                let start = (start as usize).min(file_len);
                let end = match find_u32(&mut self.decoder, TAG_JPEG_INTERCHANGE_FORMAT_LENGTH)? {
                    Some(length) => start.saturating_add(length as usize).min(file_len),
                    None => file_len,
                };
                let stream = &object[start..end];
                if !stream.starts_with(&[0xFF, 0xD8]) {
                    return Err(PageErrorKind::Unsupported {
                        feature: format!(
                            "TIFF compression 6 (old-style JPEG) whose JPEGInterchangeFormat offset {start} holds no JPEG stream"
                        ),
                    });
                }
                stream
            }
            None => {
                from_tables = old_jpeg_header_from_tags(&mut self.decoder, &object, frame_width, frame_height)?;
                &from_tables
            }
        };

        // Wang Labs and other early writers put only the tables and the frame header
        // at JPEGInterchangeFormat and the scan (from its SOS marker on) in the strips.
        // Writers without JPEGInterchangeFormat store the scan data alone.
        let has_scan = stream.windows(2).any(|marker| marker == [0xFF, 0xDA]);
        let joined;
        let stream = if has_scan {
            stream
        } else {
            let header = stream.strip_suffix(&[0xFF, 0xD9]).unwrap_or(stream);
            let rows_per_strip = if tags.tiled { frame_height } else { tags.rows_per_strip };
            let scan_header = interchange_format.is_none().then(|| scan_header(frame_components(header)));
            let chunks = if tags.tiled {
                self.chunk_slices(Tag::TileOffsets, Tag::TileByteCounts)?
            } else {
                self.strip_slices()?
            };
            joined = join_old_jpeg_strips(header, scan_header.as_deref(), &chunks, frame_width, rows_per_strip)?;
            &joined[..]
        };
        // NOTE: ReferenceBlackWhite is not applied; the JPEG decoder assumes full-range
        // YCbCr, so video-range pages (16 to 235) come out with slightly low contrast.
        let decoded = crate::raster::decode_jpeg_stream(context, stream)?;
        if decoded.width() != frame_width || decoded.height() != frame_height {
            return Err(PageErrorKind::Unsupported {
                feature: format!(
                    "TIFF compression 6 (old-style JPEG) whose JPEG stream is {}x{} for a {frame_width}x{frame_height} frame",
                    decoded.width(),
                    decoded.height()
                ),
            });
        }
        if (frame_width, frame_height) == (width, height) {
            return Ok(decoded);
        }
        Ok(decoded.crop_imm(0, 0, width, height))
    }

    /// Palette images, which `tiff` 0.11 does not decode: uncompressed or PackBits strips
    /// of 1, 2, 4 or 8-bit indices into ColorMap.
    fn decode_palette(
        &mut self,
        tags: &PageTags,
        width: u32,
        height: u32,
    ) -> Result<DynamicImage, PageErrorKind> {
        if tags.tiled || !matches!(tags.compression, COMPRESSION_NONE | COMPRESSION_PACKBITS) {
            return Err(PageErrorKind::Unsupported {
                feature: format!(
                    "palette TIFF with compression {}{}",
                    tags.compression,
                    if tags.tiled { " in tiles" } else { "" }
                ),
            });
        }
        let bits = tags.bits_per_sample;
        let color_map = self
            .decoder
            .get_tag_u16_vec(Tag::ColorMap)
            .map_err(tiff_error_kind)?;
        let entries = 1usize << bits.min(16);
        if color_map.len() < 3 * entries {
            return Err(PageErrorKind::Corrupt {
                reason: format!(
                    "ColorMap has {} values, {} expected for {bits}-bit indices",
                    color_map.len(),
                    3 * entries
                ),
            });
        }

        let row_bytes = (width as usize * usize::from(bits)).div_ceil(8);
        let packed = self.read_plain_strips(tags, height, |rows| rows * row_bytes)?;
        let indices = unpack_samples(&packed, width as usize, height as usize, bits as u8, true)?;

        let mut rgb = Vec::with_capacity(indices.len() * 3);
        for &index in &indices {
            let index = usize::from(index);
            for channel in 0..3 {
                rgb.push((color_map[channel * entries + index] >> 8) as u8);
            }
        }
        rgb_from_vec(width, height, rgb)
    }

    /// Reads uncompressed or PackBits strips into one buffer. `strip_bytes` returns the
    /// decoded size of a strip of that many rows; short strips are padded with zeros.
    fn read_plain_strips(
        &mut self,
        tags: &PageTags,
        height: u32,
        strip_bytes: impl Fn(usize) -> usize,
    ) -> Result<Vec<u8>, PageErrorKind> {
        let rows_per_strip = tags.rows_per_strip.clamp(1, height) as usize;
        let mut packed = Vec::with_capacity(strip_bytes(height as usize));
        for (index, strip) in self.strip_slices()?.into_iter().enumerate() {
            let rows = rows_per_strip.min((height as usize).saturating_sub(index * rows_per_strip));
            if rows == 0 {
                break;
            }
            let expected = strip_bytes(rows);
            let mut data = if tags.compression == COMPRESSION_PACKBITS {
                unpack_packbits(strip, expected)
            } else {
                strip[..strip.len().min(expected)].to_vec()
            };
            data.resize(expected, 0);
            packed.extend_from_slice(&data);
        }
        Ok(packed)
    }

    /// Variants that `tiff` 0.11 rejects, read from plain strips: gray of any depth up
    /// to 16 bits (12-bit scanners), CIELab, and subsampled YCbCr.
    fn decode_plain_variant(
        &mut self,
        variant: PlainVariant,
        tags: &PageTags,
        width: u32,
        height: u32,
    ) -> Result<DynamicImage, PageErrorKind> {
        let plain = matches!(tags.compression, COMPRESSION_NONE | COMPRESSION_PACKBITS);
        if !plain || tags.tiled || tags.planar {
            return Err(PageErrorKind::Unsupported {
                feature: format!(
                    "{} TIFF with compression {}{}{}; only uncompressed or PackBits strips of it are decoded",
                    variant.name(tags),
                    tags.compression,
                    if tags.tiled { ", in tiles" } else { "" },
                    if tags.planar { ", in separate planes" } else { "" },
                ),
            });
        }
        let (w, h) = (width as usize, height as usize);
        match variant {
            PlainVariant::Gray => {
                let bits = usize::from(tags.bits_per_sample);
                let row_bytes = (w * bits).div_ceil(8);
                let packed = self.read_plain_strips(tags, height, |rows| rows * row_bytes)?;
                let mut gray = tiff_plain::unpack_gray(&packed, w, h, tags.bits_per_sample);
                if tags.photometric == PHOTOMETRIC_MIN_IS_WHITE {
                    gray.iter_mut().for_each(|v| *v = 255 - *v);
                }
                gray_from_vec(width, height, gray)
            }
            PlainVariant::CieLab => {
                let packed = self.read_plain_strips(tags, height, |rows| rows * w * 3)?;
                rgb_from_vec(width, height, tiff_plain::cielab_to_rgb(&packed, w * h))
            }
            PlainVariant::SubsampledYCbCr => {
                let (sub_x, sub_y) = tags.chroma_subsampling;
                let layout = tiff_plain::SubsampledLayout::new(w, usize::from(sub_x), usize::from(sub_y));
                let packed = self.read_plain_strips(tags, height, |rows| layout.bytes_for_rows(rows))?;
                rgb_from_vec(width, height, layout.to_rgb(&packed, h))
            }
        }
    }

    fn decode_generic(&mut self, width: u32, height: u32) -> Result<DynamicImage, PageErrorKind> {
        let color = self.decoder.colortype().map_err(tiff_error_kind)?;
        let mut buffer = DecodingResult::U8(Vec::new());
        let layout = self
            .decoder
            .read_image_to_buffer(&mut buffer)
            .map_err(tiff_error_kind)?;

        let (samples_per_pixel, bits) = match color {
            ColorType::Gray(bits) => (1, bits),
            ColorType::GrayA(bits) => (2, bits),
            ColorType::RGB(bits) | ColorType::YCbCr(bits) => (3, bits),
            ColorType::RGBA(bits) | ColorType::CMYK(bits) => (4, bits),
            ColorType::CMYKA(bits) => (5, bits),
            ColorType::Multiband {
                bit_depth,
                num_samples,
            } => (usize::from(num_samples), bit_depth),
            other => {
                return Err(PageErrorKind::Unsupported {
                    feature: format!("TIFF colour type {other:?}"),
                });
            }
        };
        let pixel_count = width as usize * height as usize;

        let samples = if bits < 8 {
            if samples_per_pixel != 1 {
                return Err(PageErrorKind::Unsupported {
                    feature: format!("{bits}-bit TIFF with {samples_per_pixel} samples per pixel"),
                });
            }
            let DecodingResult::U8(data) = &buffer else {
                return Err(PageErrorKind::Unsupported {
                    feature: format!("{bits}-bit TIFF samples that are not unsigned"),
                });
            };
            unpack_samples(data, width as usize, height as usize, bits, false)?
        } else {
            let elements = samples_to_u8(&buffer);
            let element_bytes = (usize::from(bits).div_ceil(8)).max(1);
            if layout.planes > 1 {
                let plane_stride = layout.plane_stride.map_or(0, |s| s.get()) / element_bytes;
                interleave_planes(&elements, layout.planes, plane_stride, pixel_count)?
            } else {
                elements
            }
        };

        let needed = pixel_count * samples_per_pixel;
        if samples.len() < needed {
            return Err(PageErrorKind::Corrupt {
                reason: format!(
                    "decoded {} samples, {needed} expected for {width}x{height} pixels",
                    samples.len()
                ),
            });
        }
        let samples = &samples[..needed];

        match color {
            ColorType::Gray(_) | ColorType::Multiband { .. } => {
                let gray = samples.chunks_exact(samples_per_pixel).map(|p| p[0]).collect();
                gray_from_vec(width, height, gray)
            }
            ColorType::GrayA(_) => {
                let gray = samples.chunks_exact(2).map(|p| over_white(p[0], p[1])).collect();
                gray_from_vec(width, height, gray)
            }
            ColorType::RGB(_) => rgb_from_vec(width, height, samples.to_vec()),
            ColorType::RGBA(_) => {
                let rgb = samples
                    .chunks_exact(4)
                    .flat_map(|p| [p[0], p[1], p[2]].map(|v| over_white(v, p[3])))
                    .collect();
                rgb_from_vec(width, height, rgb)
            }
            ColorType::CMYK(_) | ColorType::CMYKA(_) => {
                let rgb = samples
                    .chunks_exact(samples_per_pixel)
                    .flat_map(|p| cmyk_to_rgb(p[0], p[1], p[2], p[3]))
                    .collect();
                rgb_from_vec(width, height, rgb)
            }
            ColorType::YCbCr(_) => {
                let rgb = samples
                    .chunks_exact(3)
                    .flat_map(|p| ycbcr_to_rgb(p[0], p[1], p[2]))
                    .collect();
                rgb_from_vec(width, height, rgb)
            }
            other => Err(PageErrorKind::Unsupported {
                feature: format!("TIFF colour type {other:?}"),
            }),
        }
    }
}

/// The tags of the current IFD that drive decoding.
struct PageTags {
    compression: u16,
    photometric: u16,
    fill_order: u16,
    bits_per_sample: u8,
    samples_per_pixel: u16,
    rows_per_strip: u32,
    tiled: bool,
    /// PlanarConfiguration 2: each sample in its own plane.
    planar: bool,
    /// YCbCrSubSampling (horizontal, vertical), (2, 2) when absent as TIFF 6.0 defines.
    chroma_subsampling: (u16, u16),
    dpi: Option<(f32, f32)>,
    orientation: Orientation,
}

/// Pixel layouts read from plain strips because `tiff` 0.11 rejects them.
#[derive(Debug, Clone, Copy)]
enum PlainVariant {
    /// One gray sample of a depth other than 1, 2, 4, 8 or 16 bits.
    Gray,
    /// PhotometricInterpretation 8: 8-bit L*, a*, b* with signed a* and b*.
    CieLab,
    /// PhotometricInterpretation 6 with chroma subsampling, outside JPEG compression.
    SubsampledYCbCr,
}

impl PlainVariant {
    fn of(tags: &PageTags) -> Option<Self> {
        let gray = matches!(tags.photometric, PHOTOMETRIC_MIN_IS_WHITE | PHOTOMETRIC_MIN_IS_BLACK);
        if gray && tags.samples_per_pixel == 1 && !matches!(tags.bits_per_sample, 1 | 2 | 4 | 8 | 16) && tags.bits_per_sample <= 16 {
            return Some(Self::Gray);
        }
        if tags.photometric == PHOTOMETRIC_CIELAB && tags.samples_per_pixel == 3 && tags.bits_per_sample == 8 {
            return Some(Self::CieLab);
        }
        let (sub_x, sub_y) = tags.chroma_subsampling;
        let subsampled = (sub_x, sub_y) != (1, 1) && matches!(sub_x, 1 | 2 | 4) && matches!(sub_y, 1 | 2 | 4);
        if tags.photometric == PHOTOMETRIC_YCBCR && subsampled && tags.bits_per_sample == 8 && tags.compression != COMPRESSION_JPEG {
            return Some(Self::SubsampledYCbCr);
        }
        None
    }

    fn name(self, tags: &PageTags) -> String {
        match self {
            Self::Gray => format!("{}-bit gray", tags.bits_per_sample),
            Self::CieLab => "CIELab".into(),
            Self::SubsampledYCbCr => {
                format!("YCbCr subsampled {}x{}", tags.chroma_subsampling.0, tags.chroma_subsampling.1)
            }
        }
    }
}

impl PageTags {
    fn read(decoder: &mut TiffDecoder, height: u32) -> Result<Self, PageErrorKind> {
        let compression = find_u32(decoder, Tag::Compression)?.unwrap_or(1) as u16;
        let photometric = find_u32(decoder, Tag::PhotometricInterpretation)?
            .unwrap_or(u32::from(PHOTOMETRIC_MIN_IS_WHITE)) as u16;
        let fill_order = find_u32(decoder, Tag::FillOrder)?.unwrap_or(1) as u16;
        let bits_per_sample = decoder
            .find_tag_unsigned_vec::<u16>(Tag::BitsPerSample)
            .map_err(tiff_error_kind)?
            .and_then(|bits| bits.first().copied())
            .unwrap_or(1)
            .min(255) as u8;
        let samples_per_pixel = find_u32(decoder, Tag::SamplesPerPixel)?.unwrap_or(1).min(u32::from(u16::MAX)) as u16;
        let planar = find_u32(decoder, Tag::PlanarConfiguration)?.unwrap_or(1) == 2;
        let chroma_subsampling = match decoder
            .find_tag_unsigned_vec::<u16>(Tag::ChromaSubsampling)
            .map_err(tiff_error_kind)?
            .as_deref()
        {
            Some([x, y, ..]) => (*x, *y),
            _ => (2, 2),
        };
        let rows_per_strip = find_u32(decoder, Tag::RowsPerStrip)?.unwrap_or(height).max(1);
        let tiled = decoder
            .find_tag(Tag::TileWidth)
            .map_err(tiff_error_kind)?
            .is_some();
        let orientation = find_u32(decoder, Tag::Orientation)?
            .and_then(|value| u8::try_from(value).ok())
            .and_then(Orientation::from_exif)
            .unwrap_or(Orientation::NoTransforms);
        Ok(Self {
            compression,
            photometric,
            fill_order,
            bits_per_sample,
            samples_per_pixel,
            rows_per_strip,
            tiled,
            planar,
            chroma_subsampling,
            dpi: read_dpi(decoder),
            orientation,
        })
    }
}

/// Reads XResolution and YResolution in dots per inch; `None` when either is missing,
/// zero or has no absolute unit (ResolutionUnit 1).
fn read_dpi(decoder: &mut TiffDecoder) -> Option<(f32, f32)> {
    let unit = find_u32(decoder, Tag::ResolutionUnit).ok().flatten().unwrap_or(2) as u16;
    if unit == RESOLUTION_UNIT_NONE {
        return None;
    }
    let x = rational(decoder.find_tag(Tag::XResolution).ok()??)?;
    let y = rational(decoder.find_tag(Tag::YResolution).ok()??)?;
    let scale = if unit == RESOLUTION_UNIT_CENTIMETER { 2.54 } else { 1.0 };
    let (x, y) = ((x * scale) as f32, (y * scale) as f32);
    (x.is_finite() && y.is_finite() && x > 0.0 && y > 0.0).then_some((x, y))
}

fn rational(value: Value) -> Option<f64> {
    match value {
        Value::Rational(n, d) if d != 0 => Some(f64::from(n) / f64::from(d)),
        Value::Float(v) => Some(f64::from(v)),
        Value::Double(v) => Some(v),
        Value::Short(v) => Some(f64::from(v)),
        Value::Unsigned(v) => Some(f64::from(v)),
        Value::List(values) => values.into_iter().next().and_then(rational),
        _ => None,
    }
}

fn find_u32(decoder: &mut TiffDecoder, tag: Tag) -> Result<Option<u32>, PageErrorKind> {
    decoder.find_tag_unsigned::<u32>(tag).map_err(tiff_error_kind)
}

fn tiff_limits(context: &Context) -> TiffLimits {
    // Up to 5 samples of 16 bits (CMYK with alpha) per pixel at the pixel limit.
    const MAX_BYTES_PER_PIXEL: u64 = 10;
    let bytes = context.limits.max_page_pixels.saturating_mul(MAX_BYTES_PER_PIXEL);
    let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
    let mut limits = TiffLimits::default();
    limits.decoding_buffer_size = bytes;
    limits.intermediate_buffer_size = bytes;
    limits
}

pub(crate) fn tiff_error_kind(error: TiffError) -> PageErrorKind {
    match error {
        TiffError::UnsupportedError(unsupported) => PageErrorKind::Unsupported {
            feature: format!("TIFF feature: {unsupported}"),
        },
        TiffError::LimitsExceeded => PageErrorKind::Corrupt {
            reason: "TIFF data needs a buffer larger than the page pixel limit allows".into(),
        },
        other => PageErrorKind::Corrupt {
            reason: format!("invalid TIFF: {other}"),
        },
    }
}

/// Converts decoded samples of any width to 8 bits, one output byte per sample.
/// Floating-point samples are stretched from their minimum to their maximum.
fn samples_to_u8(buffer: &DecodingResult) -> Vec<u8> {
    fn stretch(values: impl Iterator<Item = f64> + Clone) -> Vec<u8> {
        let finite = values.clone().filter(|v| v.is_finite());
        let min = finite.clone().fold(f64::INFINITY, f64::min);
        let max = finite.fold(f64::NEG_INFINITY, f64::max);
        let range = if max > min { max - min } else { 1.0 };
        values
            .map(|v| {
                let v = if v.is_finite() { v } else { min };
                (((v - min) / range) * 255.0).round().clamp(0.0, 255.0) as u8
            })
            .collect()
    }
    match buffer {
        DecodingResult::U8(data) => data.clone(),
        DecodingResult::U16(data) => data.iter().map(|&v| (v >> 8) as u8).collect(),
        DecodingResult::U32(data) => data.iter().map(|&v| (v >> 24) as u8).collect(),
        DecodingResult::U64(data) => data.iter().map(|&v| (v >> 56) as u8).collect(),
        DecodingResult::I8(data) => data.iter().map(|&v| (i16::from(v) + 128) as u8).collect(),
        DecodingResult::I16(data) => data
            .iter()
            .map(|&v| ((i32::from(v) + 32768) >> 8) as u8)
            .collect(),
        DecodingResult::I32(data) => data
            .iter()
            .map(|&v| ((i64::from(v) + (1 << 31)) >> 24) as u8)
            .collect(),
        DecodingResult::I64(data) => data
            .iter()
            .map(|&v| ((i128::from(v) + (1 << 63)) >> 56) as u8)
            .collect(),
        DecodingResult::F16(data) => stretch(data.iter().map(|v| f64::from(v.to_f32()))),
        DecodingResult::F32(data) => stretch(data.iter().map(|&v| f64::from(v))),
        DecodingResult::F64(data) => stretch(data.iter().copied()),
    }
}

fn interleave_planes(
    elements: &[u8],
    planes: usize,
    plane_stride: usize,
    pixel_count: usize,
) -> Result<Vec<u8>, PageErrorKind> {
    if plane_stride < pixel_count || elements.len() < plane_stride * (planes - 1) + pixel_count {
        return Err(PageErrorKind::Corrupt {
            reason: format!(
                "planar TIFF decoded to {} samples, {planes} planes of {pixel_count} expected",
                elements.len()
            ),
        });
    }
    let mut out = Vec::with_capacity(pixel_count * planes);
    for pixel in 0..pixel_count {
        for plane in 0..planes {
            out.push(elements[plane * plane_stride + pixel]);
        }
    }
    Ok(out)
}

fn over_white(value: u8, alpha: u8) -> u8 {
    let blended = u32::from(value) * u32::from(alpha) + 255 * (255 - u32::from(alpha));
    (blended / 255) as u8
}

/// Expands PackBits (TIFF compression 32773) data, stopping at `expected` bytes.
fn unpack_packbits(data: &[u8], expected: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(expected);
    let mut pos = 0;
    while pos < data.len() && out.len() < expected {
        let header = data[pos] as i8;
        pos += 1;
        if header >= 0 {
            let count = header as usize + 1;
            let end = (pos + count).min(data.len());
            out.extend_from_slice(&data[pos..end]);
            pos = end;
        } else if header != -128 {
            let count = (1 - isize::from(header)) as usize;
            if let Some(&value) = data.get(pos) {
                out.extend(std::iter::repeat_n(value, count));
            }
            pos += 1;
        }
    }
    out.truncate(expected);
    out
}

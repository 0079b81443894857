//! BiT checkpoints in Google's `.npz` layout: geometry inference, key and
//! shape validation, and deterministic random weights.

use std::collections::BTreeMap;
use std::path::Path;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::ConvertError;
use crate::npy::{self, Array, format_shape};

/// Prefix of every checkpoint key.
const PREFIX: &str = "resnet";
/// Key of the root 7x7 convolution kernel, HWIO.
pub const ROOT_KERNEL: &str = "resnet/root_block/standardized_conv2d/kernel";
/// Keys of the final GroupNorm before pooling.
pub const FINAL_GAMMA: &str = "resnet/group_norm/gamma";
pub const FINAL_BETA: &str = "resnet/group_norm/beta";
/// Keys of the classifier head, which feature extraction ignores.
pub const HEAD_KERNEL: &str = "resnet/head/conv2d/kernel";
pub const HEAD_BIAS: &str = "resnet/head/conv2d/bias";

/// Channel count of the root convolution at width factor 1.
const ROOT_CHANNELS_AT_WIDTH_1: usize = 64;
/// Bottleneck expansion: a unit's output has 4x its middle channels.
const EXPANSION: usize = 4;

/// Shape of a BiT ResNetV2.
///
/// Channel counts follow the BiT rule: the root has `64 * width` channels,
/// block `i` (from 0) has `root * 2^i` middle channels and 4x as many output
/// channels. Block 0 has stride 1 and every later block stride 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Geometry {
    /// Output channels of the root convolution (64 for width factor 1).
    pub root_channels: usize,
    /// Bottleneck unit count per block, for example `[3, 4, 6, 3]` for R50.
    pub units: Vec<usize>,
    /// Classes of the classifier head, when the checkpoint has one.
    pub num_classes: Option<usize>,
}

impl Geometry {
    /// Builds the geometry of BiT-R{depth}x{width}, for example
    /// `resnet_v2(&[3, 4, 6, 3], 1.0)` for R50x1.
    pub fn resnet_v2(units: &[usize], width_factor: f64) -> Result<Geometry, ConvertError> {
        let root = ROOT_CHANNELS_AT_WIDTH_1 as f64 * width_factor;
        let invalid = |reason: &str| ConvertError::InvalidGeometry(reason.to_string());
        if units.is_empty() || units.contains(&0) {
            return Err(invalid(&format!(
                "units {units:?} must list at least one block and at least one unit per block"
            )));
        }
        // GroupNorm needs channel counts that 32 groups divide.
        if !(root >= 32.0 && root.fract() == 0.0 && (root as usize).is_multiple_of(32)) {
            return Err(invalid(&format!(
                "width factor {width_factor} gives {root} root channels; expected a multiple of 32 (width 0.5, 1, 1.5, 2, ...)"
            )));
        }
        Ok(Geometry {
            root_channels: root as usize,
            units: units.to_vec(),
            num_classes: None,
        })
    }

    /// Returns the width factor (root channels / 64).
    pub fn width_factor(&self) -> f64 {
        self.root_channels as f64 / ROOT_CHANNELS_AT_WIDTH_1 as f64
    }

    /// Returns the ResNet depth: the root conv, three convs per unit and the head.
    pub fn depth(&self) -> usize {
        2 + 3 * self.units.iter().sum::<usize>()
    }

    /// Returns the short name used by BiT, for example `r50x1`.
    pub fn short_name(&self) -> String {
        format!("r{}x{}", self.depth(), self.width_factor())
    }

    /// Returns the middle (bottleneck) channels of block `block` (from 0).
    pub fn mid_channels(&self, block: usize) -> usize {
        self.root_channels << block
    }

    /// Returns the output channels of block `block` (from 0).
    pub fn out_channels(&self, block: usize) -> usize {
        EXPANSION * self.mid_channels(block)
    }

    /// Returns the stride of the first unit of block `block` (from 0).
    pub fn stride(&self, block: usize) -> usize {
        if block == 0 { 1 } else { 2 }
    }

    /// Returns the length of the pooled feature vector.
    pub fn feature_dimensions(&self) -> usize {
        self.out_channels(self.units.len() - 1)
    }

    /// Lists every key this geometry needs with its shape, in network order.
    pub fn expected_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let mut shapes = vec![(ROOT_KERNEL.to_string(), vec![7, 7, 3, self.root_channels])];
        let mut in_channels = self.root_channels;
        for (block, &units) in self.units.iter().enumerate() {
            let mid = self.mid_channels(block);
            let out = self.out_channels(block);
            for unit in 1..=units {
                let prefix = unit_prefix(block, unit);
                let unit_in = if unit == 1 { in_channels } else { out };
                shapes.push((format!("{prefix}/a/group_norm/gamma"), vec![unit_in]));
                shapes.push((format!("{prefix}/a/group_norm/beta"), vec![unit_in]));
                shapes.push((
                    format!("{prefix}/a/standardized_conv2d/kernel"),
                    vec![1, 1, unit_in, mid],
                ));
                shapes.push((format!("{prefix}/b/group_norm/gamma"), vec![mid]));
                shapes.push((format!("{prefix}/b/group_norm/beta"), vec![mid]));
                shapes.push((
                    format!("{prefix}/b/standardized_conv2d/kernel"),
                    vec![3, 3, mid, mid],
                ));
                shapes.push((format!("{prefix}/c/group_norm/gamma"), vec![mid]));
                shapes.push((format!("{prefix}/c/group_norm/beta"), vec![mid]));
                shapes.push((
                    format!("{prefix}/c/standardized_conv2d/kernel"),
                    vec![1, 1, mid, out],
                ));
                if unit == 1 {
                    shapes.push((
                        format!("{prefix}/a/proj/standardized_conv2d/kernel"),
                        vec![1, 1, unit_in, out],
                    ));
                }
            }
            in_channels = out;
        }
        shapes.push((FINAL_GAMMA.to_string(), vec![in_channels]));
        shapes.push((FINAL_BETA.to_string(), vec![in_channels]));
        if let Some(classes) = self.num_classes {
            shapes.push((HEAD_KERNEL.to_string(), vec![1, 1, in_channels, classes]));
            shapes.push((HEAD_BIAS.to_string(), vec![classes]));
        }
        shapes
    }

    /// Returns the parameter count, with or without the classifier head.
    pub fn parameter_count(&self, include_head: bool) -> usize {
        self.expected_shapes()
            .iter()
            .filter(|(key, _)| include_head || !is_head_key(key))
            .map(|(_, shape)| shape.iter().product::<usize>())
            .sum()
    }

    /// Infers the geometry from checkpoint keys and shapes: the block and
    /// unit counts from the `blockN/unitMM` key names, the width from the
    /// root kernel, and the class count from the head kernel. The result
    /// still has to pass [`Checkpoint::from_arrays`]'s validation.
    pub fn infer(arrays: &BTreeMap<String, Array>) -> Result<Geometry, ConvertError> {
        let mut units: Vec<usize> = Vec::new();
        for key in arrays.keys() {
            if let Some((block, unit)) = parse_block_unit(key) {
                if units.len() < block {
                    units.resize(block, 0);
                }
                units[block - 1] = units[block - 1].max(unit);
            }
        }
        if units.is_empty() {
            return Err(ConvertError::MissingKey {
                key: "resnet/block1/unit01/a/standardized_conv2d/kernel".into(),
                expected: "[1, 1, root channels, mid channels]".into(),
            });
        }
        if let Some(empty) = units.iter().position(|&count| count == 0) {
            let block = empty + 1;
            return Err(ConvertError::MissingKey {
                key: format!("resnet/block{block}/unit01/a/standardized_conv2d/kernel"),
                expected: format!("[1, 1, in channels, mid channels] (block{block} has no units)"),
            });
        }

        // The root kernel gives the width; fall back to the first unit's
        // input norm so that a missing root key is reported with its shape.
        let root_channels = match arrays.get(ROOT_KERNEL) {
            Some(kernel) if kernel.shape.len() == 4 => kernel.shape[3],
            _ => arrays
                .get("resnet/block1/unit01/a/group_norm/gamma")
                .filter(|gamma| gamma.shape.len() == 1)
                .map(|gamma| gamma.shape[0])
                .ok_or_else(|| ConvertError::MissingKey {
                    key: ROOT_KERNEL.into(),
                    expected: "[7, 7, 3, root channels]".into(),
                })?,
        };
        if root_channels == 0 || !root_channels.is_multiple_of(32) {
            return Err(ConvertError::ShapeMismatch {
                key: ROOT_KERNEL.into(),
                expected: "[7, 7, 3, C] with C a multiple of 32 (GroupNorm uses 32 groups)".into(),
                actual: arrays
                    .get(ROOT_KERNEL)
                    .map(|a| format_shape(&a.shape))
                    .unwrap_or_default(),
            });
        }

        let num_classes = arrays
            .get(HEAD_KERNEL)
            .filter(|kernel| kernel.shape.len() == 4)
            .map(|kernel| kernel.shape[3])
            .or_else(|| {
                arrays
                    .get(HEAD_BIAS)
                    .filter(|b| b.shape.len() == 1)
                    .map(|b| b.shape[0])
            });

        Ok(Geometry {
            root_channels,
            units,
            num_classes,
        })
    }
}

fn unit_prefix(block: usize, unit: usize) -> String {
    format!("{PREFIX}/block{}/unit{unit:02}", block + 1)
}

fn is_head_key(key: &str) -> bool {
    key.starts_with("resnet/head/")
}

/// Parses `resnet/block<B>/unit<U>/...` into (B, U), both from 1.
fn parse_block_unit(key: &str) -> Option<(usize, usize)> {
    let mut parts = key.split('/');
    if parts.next()? != PREFIX {
        return None;
    }
    let block = parts.next()?.strip_prefix("block")?.parse().ok()?;
    let unit = parts.next()?.strip_prefix("unit")?.parse().ok()?;
    (block >= 1 && unit >= 1).then_some((block, unit))
}

/// A validated BiT checkpoint: every key its geometry needs, each with the
/// right shape, and no other key.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    geometry: Geometry,
    arrays: BTreeMap<String, Array>,
}

impl Checkpoint {
    /// Reads and validates an `.npz` checkpoint.
    pub fn read_npz(path: &Path) -> Result<Checkpoint, ConvertError> {
        Checkpoint::from_arrays(npy::read_npz(path)?)
    }

    /// Validates an `.npz` checkpoint held in memory.
    pub fn from_npz_bytes(bytes: &[u8]) -> Result<Checkpoint, ConvertError> {
        Checkpoint::from_arrays(npy::read_npz_bytes(bytes)?)
    }

    /// Infers the geometry from `arrays` and validates them against it.
    ///
    /// Fails on the first missing key, mis-shaped array or unexpected key,
    /// naming the key and the expected and actual shapes.
    pub fn from_arrays(arrays: BTreeMap<String, Array>) -> Result<Checkpoint, ConvertError> {
        let geometry = Geometry::infer(&arrays)?;
        let expected = geometry.expected_shapes();

        for (key, shape) in &expected {
            match arrays.get(key) {
                None => {
                    return Err(ConvertError::MissingKey {
                        key: key.clone(),
                        expected: format_shape(shape),
                    });
                }
                Some(array) if &array.shape != shape => {
                    return Err(ConvertError::ShapeMismatch {
                        key: key.clone(),
                        expected: format_shape(shape),
                        actual: format_shape(&array.shape),
                    });
                }
                Some(_) => {}
            }
        }

        if arrays.len() != expected.len() {
            let known: std::collections::HashSet<&str> =
                expected.iter().map(|(key, _)| key.as_str()).collect();
            if let Some((key, array)) = arrays.iter().find(|(key, _)| !known.contains(key.as_str()))
            {
                return Err(ConvertError::UnexpectedKey {
                    key: key.clone(),
                    actual: format_shape(&array.shape),
                    geometry: geometry.short_name(),
                });
            }
        }

        Ok(Checkpoint { geometry, arrays })
    }

    /// Builds a checkpoint of `geometry` with deterministic random weights.
    ///
    /// Kernels are drawn from N(0, 2 / fan_in) (He initialisation) with a
    /// ChaCha8 generator seeded by `seed`, key by key in network order, so
    /// the same seed and geometry give the same bytes on every platform.
    /// GroupNorm gammas are 1 and betas 0. A head is generated only when
    /// `geometry.num_classes` is set.
    pub fn random(geometry: &Geometry, seed: u64) -> Checkpoint {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut arrays = BTreeMap::new();
        for (key, shape) in geometry.expected_shapes() {
            let count: usize = shape.iter().product();
            let data = if key.ends_with("/gamma") {
                vec![1.0; count]
            } else if key.ends_with("/beta") || key == HEAD_BIAS {
                vec![0.0; count]
            } else {
                // HWIO: fan-in is everything except the output channels.
                let fan_in: usize = shape[..shape.len() - 1].iter().product();
                let normal = Normal::new(0.0f32, (2.0 / fan_in as f32).sqrt())
                    .expect("positive standard deviation");
                (0..count).map(|_| normal.sample(&mut rng)).collect()
            };
            arrays.insert(key, Array { shape, data });
        }
        Checkpoint {
            geometry: geometry.clone(),
            arrays,
        }
    }

    /// Returns the inferred geometry.
    pub fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// Returns every array by key.
    pub fn arrays(&self) -> &BTreeMap<String, Array> {
        &self.arrays
    }

    /// Returns the array for `key`. Validation guarantees the presence of
    /// every key the geometry lists.
    pub fn array(&self, key: &str) -> &Array {
        &self.arrays[key]
    }

    /// Returns the parameter count, with or without the classifier head.
    pub fn parameter_count(&self, include_head: bool) -> usize {
        self.geometry.parameter_count(include_head)
    }

    /// Writes the checkpoint as an `.npz` in Google's layout.
    pub fn write_npz(&self, path: &Path) -> Result<(), ConvertError> {
        npy::write_npz_file(path, &self.arrays)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_r50x1_parameter_count() {
        let geometry = Geometry::resnet_v2(&[3, 4, 6, 3], 1.0).unwrap();
        assert_eq!(geometry.parameter_count(false), 23_500_352);
        assert_eq!(geometry.feature_dimensions(), 2048);
        assert_eq!(geometry.short_name(), "r50x1");
        assert_eq!(geometry.expected_shapes().len(), 151);
    }

    #[test]
    fn geometry_rejects_width_without_32_groups() {
        assert!(Geometry::resnet_v2(&[1, 1], 0.25).is_err());
        assert!(Geometry::resnet_v2(&[], 1.0).is_err());
    }

    #[test]
    fn random_checkpoint_is_deterministic() {
        let geometry = Geometry::resnet_v2(&[1, 1], 0.5).unwrap();
        let first = Checkpoint::random(&geometry, 7);
        let second = Checkpoint::random(&geometry, 7);
        let other = Checkpoint::random(&geometry, 8);
        assert_eq!(first.arrays(), second.arrays());
        assert_ne!(first.arrays(), other.arrays());
    }

    #[test]
    fn random_checkpoint_passes_validation() {
        let geometry = Geometry::resnet_v2(&[2, 1, 3], 1.0).unwrap();
        let checkpoint = Checkpoint::random(&geometry, 0);
        let reread = Checkpoint::from_arrays(checkpoint.arrays().clone()).unwrap();
        assert_eq!(reread.geometry(), &geometry);
    }
}

//! Builds the ONNX graph of a BiT ResNetV2 feature extractor.

use prost::Message;

use crate::checkpoint::{Checkpoint, FINAL_BETA, FINAL_GAMMA, ROOT_KERNEL};
use crate::npy::Array;
use crate::onnx::{
    AttributeProto, DATA_TYPE_FLOAT, DATA_TYPE_INT64, Dimension, DimensionValue, GraphProto,
    ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
    TensorShapeProto, TensorTypeProto, TypeProto, ValueInfoProto, attribute_type,
};

/// Name of the graph input, `[batch, 3, size, size]` float32 NCHW.
pub const INPUT_NAME: &str = "input";
/// Name of the graph output, `[batch, features]` float32.
pub const OUTPUT_NAME: &str = "features";
/// Name of the symbolic batch dimension.
pub const BATCH_DIM: &str = "batch";
/// Metadata key for the model name.
pub const METADATA_NAME: &str = "folio.model_name";
/// Metadata key that is "true" for trained weights and "false" for random ones.
pub const METADATA_TRAINED: &str = "folio.trained";

/// Number of GroupNorm groups in every BiT norm layer.
pub const GROUPS: usize = 32;
/// GroupNorm epsilon in BiT.
pub const GROUP_NORM_EPSILON: f32 = 1e-5;
/// Epsilon added to the variance when standardising convolution weights.
pub const WEIGHT_STANDARDIZATION_EPSILON: f64 = 1e-10;

/// ONNX opset of the written graph; opset 17 keeps `axes` an attribute of
/// `ReduceMean` and is what PyTorch's exporter writes for BiT.
const OPSET: i64 = 17;
/// ONNX IR version matching opset 17 (ONNX 1.12).
const IR_VERSION: i64 = 8;

/// ONNX operator pattern used for GroupNorm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupNormStyle {
    /// Reshape to `[N, 32, -1]`, `InstanceNormalization` with unit scale,
    /// reshape back, then `Mul` gamma and `Add` beta: PyTorch's export.
    #[default]
    InstanceNorm,
    /// The same computation with `ReduceMean`, `Sub`, `Mul`, `Sqrt` and `Div`.
    Primitive,
}

/// Options for [`to_onnx`].
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// Height and width of the input image in pixels.
    pub image_size: usize,
    /// Operators used for GroupNorm.
    pub group_norm: GroupNormStyle,
    /// Stored in the ONNX metadata under [`METADATA_NAME`].
    pub model_name: String,
    /// Stored in the ONNX metadata under [`METADATA_TRAINED`].
    pub trained: bool,
}

impl Default for ConvertOptions {
    fn default() -> ConvertOptions {
        ConvertOptions {
            image_size: 128,
            group_norm: GroupNormStyle::default(),
            model_name: "bit".to_string(),
            trained: true,
        }
    }
}

/// Builds the feature-extractor graph and serialises it as ONNX protobuf.
pub fn to_onnx(checkpoint: &Checkpoint, options: &ConvertOptions) -> Vec<u8> {
    build_model(checkpoint, options).encode_to_vec()
}

/// Builds the feature-extractor graph as an ONNX `ModelProto`.
pub fn build_model(checkpoint: &Checkpoint, options: &ConvertOptions) -> ModelProto {
    let geometry = checkpoint.geometry();
    let mut graph = GraphBuilder::new(options.group_norm);

    // Root: 7x7/2 standardised conv (pad 3), zero pad 1, 3x3/2 max-pool.
    // The zero pad matters because the root has no ReLU: max-pool's own
    // padding would pad with -inf instead.
    let mut x = graph.conv("root/conv", INPUT_NAME, checkpoint.array(ROOT_KERNEL), 2, 3);
    x = graph.zero_pad("root/pad", &x, 1);
    x = graph.max_pool("root/pool", &x, 3, 2);

    for (block, &units) in geometry.units.iter().enumerate() {
        for unit in 1..=units {
            let stride = if unit == 1 { geometry.stride(block) } else { 1 };
            x = graph.unit(
                checkpoint,
                &format!("block{}/unit{unit:02}", block + 1),
                &x,
                stride,
            );
        }
    }

    x = graph.group_norm(
        "final/gn",
        &x,
        checkpoint.array(FINAL_GAMMA),
        checkpoint.array(FINAL_BETA),
    );
    x = graph.relu("final/relu", &x);
    graph.node(
        "ReduceMean",
        "pool",
        &[&x],
        OUTPUT_NAME,
        vec![ints("axes", &[2, 3]), int("keepdims", 0)],
    );

    let size = options.image_size as i64;
    let input = value_info(
        INPUT_NAME,
        vec![
            dim_param(BATCH_DIM),
            dim_value(3),
            dim_value(size),
            dim_value(size),
        ],
    );
    let output = value_info(
        OUTPUT_NAME,
        vec![
            dim_param(BATCH_DIM),
            dim_value(geometry.feature_dimensions() as i64),
        ],
    );

    ModelProto {
        ir_version: IR_VERSION,
        producer_name: "folio-bit-convert".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!(
            "BiT ResNetV2-{} feature extractor: input [batch,3,{size},{size}] in [-1,1], output [batch,{}] pooled features",
            geometry.short_name(),
            geometry.feature_dimensions()
        ),
        graph: Some(GraphProto {
            node: graph.nodes,
            name: format!("bit_{}", geometry.short_name()),
            initializer: graph.initializers,
            input: vec![input],
            output: vec![output],
            ..Default::default()
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        metadata_props: vec![
            StringStringEntryProto {
                key: METADATA_NAME.into(),
                value: options.model_name.clone(),
            },
            StringStringEntryProto {
                key: METADATA_TRAINED.into(),
                value: options.trained.to_string(),
            },
        ],
        ..Default::default()
    }
}

/// Standardises an HWIO kernel per output channel and returns it as OIHW
/// with its ONNX dims.
///
/// Each output channel's weights lose their mean and are divided by
/// sqrt(biased variance + 1e-10), as BiT's `StdConv2d` does at run time.
/// The statistics are computed in f64 so the folded weights match a float32
/// run-time standardisation to rounding.
pub fn standardize_kernel(kernel: &Array) -> (Vec<i64>, Vec<f32>) {
    let [height, width, inputs, outputs] = kernel.shape[..] else {
        panic!("kernel shape {:?} is not HWIO", kernel.shape);
    };
    let fan_in = height * width * inputs;
    let mut oihw = vec![0.0f32; kernel.data.len()];
    let mut channel = vec![0.0f64; fan_in];
    for out in 0..outputs {
        for h in 0..height {
            for w in 0..width {
                for i in 0..inputs {
                    let hwio = ((h * width + w) * inputs + i) * outputs + out;
                    channel[(i * height + h) * width + w] = kernel.data[hwio] as f64;
                }
            }
        }
        let mean = channel.iter().sum::<f64>() / fan_in as f64;
        let variance = channel.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / fan_in as f64;
        let scale = 1.0 / (variance + WEIGHT_STANDARDIZATION_EPSILON).sqrt();
        for (target, value) in oihw[out * fan_in..(out + 1) * fan_in]
            .iter_mut()
            .zip(&channel)
        {
            *target = ((value - mean) * scale) as f32;
        }
    }
    let dims = vec![outputs as i64, inputs as i64, height as i64, width as i64];
    (dims, oihw)
}

struct GraphBuilder {
    style: GroupNormStyle,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
}

impl GraphBuilder {
    fn new(style: GroupNormStyle) -> GraphBuilder {
        let mut builder = GraphBuilder {
            style,
            nodes: Vec::new(),
            initializers: Vec::new(),
        };
        // Shared constants of every GroupNorm.
        builder.int64_initializer("gn/grouped_shape", &[0, GROUPS as i64, -1]);
        match style {
            GroupNormStyle::InstanceNorm => {
                builder.float_initializer("gn/unit_scale", vec![GROUPS as i64], vec![1.0; GROUPS]);
                builder.float_initializer("gn/zero_bias", vec![GROUPS as i64], vec![0.0; GROUPS]);
            }
            GroupNormStyle::Primitive => {
                builder.float_initializer("gn/epsilon", vec![], vec![GROUP_NORM_EPSILON]);
            }
        }
        builder
    }

    /// Adds a node with one output named `output` and returns that name.
    fn node(
        &mut self,
        op_type: &str,
        name: &str,
        inputs: &[&str],
        output: &str,
        attribute: Vec<AttributeProto>,
    ) -> String {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            name: name.to_string(),
            op_type: op_type.to_string(),
            attribute,
            domain: String::new(),
        });
        output.to_string()
    }

    /// Adds a node whose output is named after the node.
    fn op(
        &mut self,
        op_type: &str,
        name: &str,
        inputs: &[&str],
        attribute: Vec<AttributeProto>,
    ) -> String {
        self.node(op_type, name, inputs, name, attribute)
    }

    fn float_initializer(&mut self, name: &str, dims: Vec<i64>, values: Vec<f32>) -> String {
        let raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers.push(TensorProto {
            dims,
            data_type: DATA_TYPE_FLOAT,
            name: name.to_string(),
            raw_data,
        });
        name.to_string()
    }

    fn int64_initializer(&mut self, name: &str, values: &[i64]) -> String {
        self.initializers.push(TensorProto {
            dims: vec![values.len() as i64],
            data_type: DATA_TYPE_INT64,
            name: name.to_string(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        name.to_string()
    }

    fn conv(&mut self, name: &str, x: &str, kernel: &Array, stride: usize, pad: usize) -> String {
        let (dims, weights) = standardize_kernel(kernel);
        let kernel_shape = [dims[2], dims[3]];
        let weight = self.float_initializer(&format!("{name}/weight"), dims, weights);
        let (stride, pad) = (stride as i64, pad as i64);
        self.op(
            "Conv",
            name,
            &[x, &weight],
            vec![
                ints("kernel_shape", &kernel_shape),
                ints("strides", &[stride, stride]),
                ints("pads", &[pad, pad, pad, pad]),
            ],
        )
    }

    fn zero_pad(&mut self, name: &str, x: &str, pad: i64) -> String {
        let pads =
            self.int64_initializer(&format!("{name}/pads"), &[0, 0, pad, pad, 0, 0, pad, pad]);
        self.op("Pad", name, &[x, &pads], vec![string("mode", "constant")])
    }

    fn max_pool(&mut self, name: &str, x: &str, kernel: i64, stride: i64) -> String {
        self.op(
            "MaxPool",
            name,
            &[x],
            vec![
                ints("kernel_shape", &[kernel, kernel]),
                ints("strides", &[stride, stride]),
            ],
        )
    }

    fn relu(&mut self, name: &str, x: &str) -> String {
        self.op("Relu", name, &[x], vec![])
    }

    /// GroupNorm over 32 groups with per-channel affine, NCHW.
    fn group_norm(&mut self, name: &str, x: &str, gamma: &Array, beta: &Array) -> String {
        let channels = gamma.len() as i64;
        let grouped = self.op(
            "Reshape",
            &format!("{name}/group"),
            &[x, "gn/grouped_shape"],
            vec![],
        );
        let normalized = match self.style {
            GroupNormStyle::InstanceNorm => self.op(
                "InstanceNormalization",
                &format!("{name}/normalize"),
                &[&grouped, "gn/unit_scale", "gn/zero_bias"],
                vec![float("epsilon", GROUP_NORM_EPSILON)],
            ),
            GroupNormStyle::Primitive => {
                let axes = vec![ints("axes", &[2]), int("keepdims", 1)];
                let mean = self.op(
                    "ReduceMean",
                    &format!("{name}/mean"),
                    &[&grouped],
                    axes.clone(),
                );
                let centered = self.op(
                    "Sub",
                    &format!("{name}/centered"),
                    &[&grouped, &mean],
                    vec![],
                );
                let squared = self.op(
                    "Mul",
                    &format!("{name}/squared"),
                    &[&centered, &centered],
                    vec![],
                );
                let variance =
                    self.op("ReduceMean", &format!("{name}/variance"), &[&squared], axes);
                let shifted = self.op(
                    "Add",
                    &format!("{name}/variance_eps"),
                    &[&variance, "gn/epsilon"],
                    vec![],
                );
                let deviation = self.op("Sqrt", &format!("{name}/deviation"), &[&shifted], vec![]);
                self.op(
                    "Div",
                    &format!("{name}/normalize"),
                    &[&centered, &deviation],
                    vec![],
                )
            }
        };
        let shape = self.op("Shape", &format!("{name}/shape"), &[x], vec![]);
        let restored = self.op(
            "Reshape",
            &format!("{name}/ungroup"),
            &[&normalized, &shape],
            vec![],
        );
        let gamma = self.float_initializer(
            &format!("{name}/gamma"),
            vec![channels, 1, 1],
            gamma.data.clone(),
        );
        let beta = self.float_initializer(
            &format!("{name}/beta"),
            vec![channels, 1, 1],
            beta.data.clone(),
        );
        let scaled = self.op(
            "Mul",
            &format!("{name}/scale"),
            &[&restored, &gamma],
            vec![],
        );
        self.op("Add", &format!("{name}/shift"), &[&scaled, &beta], vec![])
    }

    /// Adds one pre-activation bottleneck unit and returns its output name.
    fn unit(&mut self, checkpoint: &Checkpoint, unit: &str, x: &str, stride: usize) -> String {
        let key = |part: &str| format!("resnet/{unit}/{part}");
        let gn = |builder: &mut GraphBuilder, part: &str, input: &str| {
            let normalized = builder.group_norm(
                &format!("{unit}/{part}/gn"),
                input,
                checkpoint.array(&key(&format!("{part}/group_norm/gamma"))),
                checkpoint.array(&key(&format!("{part}/group_norm/beta"))),
            );
            builder.relu(&format!("{unit}/{part}/relu"), &normalized)
        };
        let conv =
            |builder: &mut GraphBuilder, part: &str, input: &str, stride: usize, pad: usize| {
                builder.conv(
                    &format!("{unit}/{part}/conv"),
                    input,
                    checkpoint.array(&key(&format!("{part}/standardized_conv2d/kernel"))),
                    stride,
                    pad,
                )
            };

        let preactivated = gn(self, "a", x);
        let proj_key = key("a/proj/standardized_conv2d/kernel");
        let shortcut = match checkpoint.arrays().get(&proj_key) {
            Some(kernel) => self.conv(
                &format!("{unit}/proj/conv"),
                &preactivated,
                kernel,
                stride,
                0,
            ),
            None => x.to_string(),
        };

        let mut y = conv(self, "a", &preactivated, 1, 0);
        y = gn(self, "b", &y);
        y = conv(self, "b", &y, stride, 1);
        y = gn(self, "c", &y);
        y = conv(self, "c", &y, 1, 0);
        self.op("Add", &format!("{unit}/residual"), &[&y, &shortcut], vec![])
    }
}

fn value_info(name: &str, dims: Vec<Dimension>) -> ValueInfoProto {
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: DATA_TYPE_FLOAT,
                shape: Some(TensorShapeProto { dim: dims }),
            }),
        }),
    }
}

fn dim_value(value: i64) -> Dimension {
    Dimension {
        value: Some(DimensionValue::DimValue(value)),
    }
}

fn dim_param(name: &str) -> Dimension {
    Dimension {
        value: Some(DimensionValue::DimParam(name.to_string())),
    }
}

fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        ints: values.to_vec(),
        r#type: attribute_type::INTS,
        ..Default::default()
    }
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        i: value,
        r#type: attribute_type::INT,
        ..Default::default()
    }
}

fn float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        f: value,
        r#type: attribute_type::FLOAT,
        ..Default::default()
    }
}

fn string(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        s: value.as_bytes().to_vec(),
        r#type: attribute_type::STRING,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standardize_kernel_gives_zero_mean_unit_variance() {
        // HWIO [1, 2, 1, 2]: output channel 0 is (1, 3), channel 1 is (2, 6).
        let kernel = Array::new(vec![1, 2, 1, 2], vec![1.0, 2.0, 3.0, 6.0]).unwrap();
        let (dims, weights) = standardize_kernel(&kernel);
        assert_eq!(dims, vec![2, 1, 1, 2]);
        for (value, expected) in weights.iter().zip([-1.0, 1.0, -1.0, 1.0]) {
            assert!((value - expected).abs() < 1e-6, "{weights:?}");
        }
    }

    #[test]
    fn onnx_bytes_decode_with_metadata_and_output_dims() {
        let geometry = crate::Geometry::resnet_v2(&[1, 1], 0.5).unwrap();
        let checkpoint = Checkpoint::random(&geometry, 3);
        let options = ConvertOptions {
            model_name: "tiny".into(),
            trained: false,
            ..Default::default()
        };
        let model = ModelProto::decode(to_onnx(&checkpoint, &options).as_slice()).unwrap();
        assert_eq!(model.metadata(METADATA_NAME), Some("tiny"));
        assert_eq!(model.metadata(METADATA_TRAINED), Some("false"));
        assert_eq!(model.output_dims(), Some(vec![None, Some(256)]));
    }
}

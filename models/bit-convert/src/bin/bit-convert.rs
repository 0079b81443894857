//! `bit-convert`: convert, generate and inspect BiT checkpoints.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use folio_bit_convert::{Checkpoint, ConvertOptions, Geometry, GroupNormStyle, to_onnx};

#[derive(Parser)]
#[command(
    version,
    about = "Convert Google BiT .npz checkpoints into ONNX feature extractors"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert a checkpoint in Google's .npz layout into an ONNX graph.
    Convert {
        /// Checkpoint to read, for example BiT-M-R50x1.npz.
        input: PathBuf,
        /// ONNX file to write.
        output: PathBuf,
        /// Model name stored in the ONNX metadata (default: the input file stem).
        #[arg(long)]
        name: Option<String>,
        /// Mark the weights as untrained in the ONNX metadata.
        #[arg(long)]
        untrained: bool,
        #[command(flatten)]
        graph: GraphArgs,
    },
    /// Write an ONNX graph with deterministic random weights.
    Random {
        /// Seed of the ChaCha8 generator.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Units per block, comma-separated (R50: 3,4,6,3; R101: 3,4,23,3; R152: 3,8,36,3).
        #[arg(long, value_delimiter = ',', default_value = "3,4,6,3")]
        units: Vec<usize>,
        /// Width factor; the root convolution has 64 x width channels.
        #[arg(long, default_value_t = 1.0)]
        width: f64,
        /// Also write the random checkpoint as .npz to this path.
        #[arg(long)]
        npz: Option<PathBuf>,
        /// ONNX file to write.
        output: PathBuf,
        #[command(flatten)]
        graph: GraphArgs,
    },
    /// Print a checkpoint's geometry and parameter count.
    Inspect {
        /// Checkpoint to read.
        input: PathBuf,
    },
}

#[derive(clap::Args)]
struct GraphArgs {
    /// Input height and width in pixels.
    #[arg(long, default_value_t = 128)]
    image_size: usize,
    /// ONNX operators used for GroupNorm.
    #[arg(long, value_enum, default_value_t = GroupNormArg::InstanceNorm)]
    group_norm: GroupNormArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum GroupNormArg {
    /// Reshape + InstanceNormalization + Reshape + affine (PyTorch's export).
    InstanceNorm,
    /// ReduceMean, Sub, Mul, Sqrt and Div.
    Primitive,
}

impl GraphArgs {
    fn options(&self, model_name: String, trained: bool) -> ConvertOptions {
        ConvertOptions {
            image_size: self.image_size,
            group_norm: match self.group_norm {
                GroupNormArg::InstanceNorm => GroupNormStyle::InstanceNorm,
                GroupNormArg::Primitive => GroupNormStyle::Primitive,
            },
            model_name,
            trained,
        }
    }
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Convert {
            input,
            output,
            name,
            untrained,
            graph,
        } => {
            let checkpoint = Checkpoint::read_npz(&input)?;
            let name = name.unwrap_or_else(|| file_stem(&input));
            write_onnx(&output, &checkpoint, &graph.options(name, !untrained))
        }
        Command::Random {
            seed,
            units,
            width,
            npz,
            output,
            graph,
        } => {
            let geometry = Geometry::resnet_v2(&units, width)?;
            let checkpoint = Checkpoint::random(&geometry, seed);
            if let Some(npz) = npz {
                checkpoint.write_npz(&npz)?;
            }
            let name = folio_bit_convert::random_model_name(&geometry, seed);
            write_onnx(&output, &checkpoint, &graph.options(name, false))
        }
        Command::Inspect { input } => {
            let checkpoint = Checkpoint::read_npz(&input)?;
            let geometry = checkpoint.geometry();
            println!("geometry: BiT-{}", geometry.short_name());
            println!("units per block: {:?}", geometry.units);
            println!("width factor: {}", geometry.width_factor());
            println!("root channels: {}", geometry.root_channels);
            println!("features: {}", geometry.feature_dimensions());
            match geometry.num_classes {
                Some(classes) => println!("head classes: {classes}"),
                None => println!("head classes: none (no head)"),
            }
            println!("arrays: {}", checkpoint.arrays().len());
            println!(
                "parameters without head: {}",
                checkpoint.parameter_count(false)
            );
            println!("parameters with head: {}", checkpoint.parameter_count(true));
            Ok(())
        }
    }
}

fn write_onnx(
    output: &Path,
    checkpoint: &Checkpoint,
    options: &ConvertOptions,
) -> anyhow::Result<()> {
    let bytes = to_onnx(checkpoint, options);
    std::fs::write(output, &bytes)
        .with_context(|| format!("failed to write {}", output.display()))?;
    eprintln!(
        "wrote {} ({} bytes, BiT-{}, {} features, model name {:?})",
        output.display(),
        bytes.len(),
        checkpoint.geometry().short_name(),
        checkpoint.geometry().feature_dimensions(),
        options.model_name
    );
    Ok(())
}

fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bit".to_string())
}

//! The seam between the pipeline and the model: anything that turns page
//! images into L2-normalised vectors.

/// Embeds page images; implemented by [`folio_embed::Embedder`].
pub trait PageEmbedder: Send + Sync {
    /// Embeds each image; returns one L2-normalised vector per image, in order.
    fn embed_pages(&self, images: &[&image::DynamicImage]) -> Result<Vec<Vec<f32>>, String>;
    /// Model identity recorded with every vector; names an untrained model as such.
    fn model_id(&self) -> String;
    /// Length of every vector.
    fn dimensions(&self) -> usize;
    /// Preprocessing recorded in shard metadata.
    fn preprocessing(&self) -> String;
}

impl PageEmbedder for folio_embed::Embedder {
    fn embed_pages(&self, images: &[&image::DynamicImage]) -> Result<Vec<Vec<f32>>, String> {
        self.embed(images).map_err(|error| error.to_string())
    }

    fn model_id(&self) -> String {
        self.identity().to_string()
    }

    fn dimensions(&self) -> usize {
        folio_embed::Embedder::dimensions(self)
    }

    fn preprocessing(&self) -> String {
        PREPROCESSING.to_owned()
    }
}

/// Preprocessing of the BiT reference pipeline, as recorded in shard metadata.
pub const PREPROCESSING: &str = "rgb; resize 128x128 bilinear antialiased (Pillow); x/255*2-1";

/// Whether a model id names a random-weight model, whose similarities
/// reflect layout and ink rather than the content a trained BiT model encodes.
pub fn is_untrained(model_id: &str) -> bool {
    model_id.ends_with("(untrained)")
}

/// Shard metadata for vectors from `embedder`.
pub fn shard_meta(embedder: &dyn PageEmbedder) -> folio_shard::ShardMeta {
    folio_shard::ShardMeta::new(embedder.model_id(), embedder.dimensions(), embedder.preprocessing())
}

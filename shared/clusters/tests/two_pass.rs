//! Two-pass clustering with `PageSampler`: separation, order independence, pages missing
//! from the second pass, and input errors.

mod common;

use common::{blobs, four_blobs, is_one_to_one};
use folio_clusters::{ClusterError, ClusterParams, ClusterRun, KChoice, PageRef, PageSampler, SummaryIds};
use ndarray::Array2;

fn ids() -> SummaryIds {
    SummaryIds { model_id: "bit-m-r50x1/1".into(), snapshot_id: "snapshot-a".into() }
}

fn sampled_params() -> ClusterParams {
    ClusterParams {
        k: KChoice::Given { k: 4 },
        sample_size_limit: 60,
        silhouette_sample_size: 50,
        seed: 11,
        ..ClusterParams::default()
    }
}

/// Runs both passes, offering rows in `first` order and assigning them in `second` order,
/// `block` rows at a time.
fn two_pass(
    pages: &[PageRef],
    vectors: &Array2<f32>,
    first: &[usize],
    second: &[usize],
    block: usize,
) -> (Vec<PageRef>, ClusterRun) {
    let mut sampler = PageSampler::new(&sampled_params()).unwrap();
    for &row in first {
        sampler.offer(pages[row].clone(), vectors.row(row).as_slice().unwrap()).unwrap();
    }
    let mut fitted = sampler.fit().unwrap();
    for rows in second.chunks(block) {
        let block_pages: Vec<PageRef> = rows.iter().map(|&row| pages[row].clone()).collect();
        let block_vectors = vectors.select(ndarray::Axis(0), rows);
        assert_eq!(fitted.assign(&block_pages, block_vectors.view()), 0);
    }
    fitted.finish(&ids()).unwrap()
}

#[test]
fn two_pass_separates_four_blobs() {
    let (pages, vectors, truth) = blobs(&four_blobs(), 64, 0.05, 21);
    let order: Vec<usize> = (0..pages.len()).collect();
    let (sorted_pages, run) = two_pass(&pages, &vectors, &order, &order, 1000);
    let summary = &run.summary;

    // The blob fixture lists pages in document order, so the sorted order is a permutation
    // of it; map truth through the page references.
    let truth_of = |page: &PageRef| truth[pages.iter().position(|p| p == page).unwrap()];
    let sorted_truth: Vec<usize> = sorted_pages.iter().map(truth_of).collect();
    assert!(is_one_to_one(&run.labels, &sorted_truth));
    assert_eq!(summary.page_count, 180);
    assert_eq!(summary.clusters.iter().map(|c| c.page_count).sum::<usize>(), 180);
    assert!(summary.sampled);
    assert_eq!(summary.sample_size, 60);
    assert_eq!(summary.silhouette.sample_size, 50);
    assert!(!summary.near_duplicates.computed);
    assert_eq!(run.map_points.len(), 180);
}

#[test]
fn two_pass_ignores_order_and_block_size() {
    let (pages, vectors, _) = blobs(&four_blobs(), 64, 0.05, 22);
    let forward: Vec<usize> = (0..pages.len()).collect();
    // A fixed shuffle: stride through the rows with a step coprime to 180.
    let shuffled: Vec<usize> = (0..pages.len()).map(|index| (index * 7) % pages.len()).collect();
    let reversed: Vec<usize> = forward.iter().rev().copied().collect();

    let (pages_a, run_a) = two_pass(&pages, &vectors, &forward, &forward, 1000);
    let (pages_b, run_b) = two_pass(&pages, &vectors, &shuffled, &reversed, 7);
    assert_eq!(pages_a, pages_b);
    assert_eq!(run_a.labels, run_b.labels);
    assert_eq!(
        serde_json::to_string(&run_a.summary).unwrap(),
        serde_json::to_string(&run_b.summary).unwrap()
    );
}

#[test]
fn two_pass_drops_pages_deleted_between_passes() {
    let (pages, vectors, _) = blobs(&four_blobs(), 64, 0.05, 23);
    let first: Vec<usize> = (0..pages.len()).collect();
    // Every tenth page was deleted between the passes, and one new page arrived.
    let second: Vec<usize> = first.iter().copied().filter(|row| row % 10 != 0).collect();
    let mut sampler = PageSampler::new(&sampled_params()).unwrap();
    for &row in &first {
        sampler.offer(pages[row].clone(), vectors.row(row).as_slice().unwrap()).unwrap();
    }
    let mut fitted = sampler.fit().unwrap();
    let second_pages: Vec<PageRef> = second.iter().map(|&row| pages[row].clone()).collect();
    assert_eq!(fitted.assign(&second_pages, vectors.select(ndarray::Axis(0), &second).view()), 0);
    let newcomer = [PageRef::new("late/arrival.tif", 1)];
    assert_eq!(fitted.assign(&newcomer, vectors.select(ndarray::Axis(0), &[0]).view()), 1);

    let (kept, run) = fitted.finish(&ids()).unwrap();
    assert_eq!(kept.len(), second.len());
    assert_eq!(run.summary.page_count, second.len());
    assert_eq!(run.summary.clusters.iter().map(|c| c.page_count).sum::<usize>(), second.len());
    let members: Vec<&PageRef> = run.summary.clusters.iter().flat_map(|c| &c.members).collect();
    assert!(members.iter().all(|page| second_pages.contains(page)));
}

#[test]
fn page_sampler_rejects_bad_vectors() {
    let mut sampler = PageSampler::new(&sampled_params()).unwrap();
    sampler.offer(PageRef::new("a.tif", 1), &[1.0, 0.0]).unwrap();
    let error = sampler.offer(PageRef::new("b.tif", 3), &[1.0, 0.0, 0.0]).unwrap_err();
    assert!(matches!(error, ClusterError::DimensionMismatch { expected: 2, found: 3, .. }), "{error}");
    assert!(error.to_string().contains("b.tif page 3"), "{error}");
    let error = sampler.offer(PageRef::new("c.tif", 2), &[f32::NAN, 0.0]).unwrap_err();
    assert!(matches!(error, ClusterError::NonFiniteVector { page: 2, .. }), "{error}");
    let error = sampler.offer(PageRef::new("d.tif", 0), &[1.0, 0.0]).unwrap_err();
    assert!(matches!(error, ClusterError::InvalidPageNumber { .. }), "{error}");

    // One page is too few to cluster.
    assert!(matches!(sampler.fit().err(), Some(ClusterError::TooFewPages { pages: 1 })));
}

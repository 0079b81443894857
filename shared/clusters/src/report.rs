//! A single static HTML report that links the PNG files by relative path.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::summary::ClusterSummary;

/// File names of the pictures, relative to the folder (or S3 prefix) of the HTML file.
#[derive(Clone, Debug, Default)]
pub struct ReportPictures {
    /// The map drawn by [`crate::map_png`].
    pub map: Option<String>,
    /// Contact sheet of each cluster id, drawn by [`crate::contact_sheet`].
    pub contact_sheets: BTreeMap<u32, String>,
}

/// Maximum number of near-duplicate groups listed. The summary JSON contains all of them.
const MAX_LISTED_DUPLICATE_GROUPS: usize = 50;

/// Builds one self-contained HTML page with the summary tables and `<img>` links to the
/// pictures. It uses no external script or style sheet and no absolute URL, so it opens
/// from a local folder or from S3 without a server. Every text from the summary is escaped.
///
/// A short inline script runs when the page has loaded. It writes the number of loaded and
/// broken images into the `data-loaded` and `data-broken` attributes of the element with id
/// `image-status`, and puts a visible "image missing: NAME" note under each broken image.
pub fn report_html(summary: &ClusterSummary, pictures: &ReportPictures) -> String {
    let mut html = String::new();
    let title = format!("Clusters of snapshot {}", summary.snapshot_id);
    let parameters = &summary.parameters;

    // `fmt::Write` for String never returns an error, so the results are ignored below.
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>\n{}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(&title),
        STYLE,
        escape(&title)
    );

    let _ = writeln!(html, "<h2>Overview</h2>\n<table>");
    let overview: Vec<(&str, String)> = vec![
        ("Model", summary.model_id.clone()),
        ("Pages", summary.page_count.to_string()),
        ("Documents", summary.document_count.to_string()),
        ("k", format!("{} ({})", parameters.k, k_choice_text(summary))),
        (
            "PCA",
            format!(
                "{} of {} dimensions, {:.4} of variance kept ({} requested)",
                parameters.pca_dims, parameters.input_dims, parameters.variance_kept, parameters.variance_share
            ),
        ),
        (
            "Fitted on",
            if summary.sampled {
                format!(
                    "a seeded sample of {} of {} pages; every page was then assigned to its nearest centroid",
                    summary.sample_size, summary.page_count
                )
            } else {
                "all pages".to_string()
            },
        ),
        (
            "Silhouette",
            format!(
                "{:.3} ({})",
                summary.silhouette.overall,
                if summary.silhouette.sampled {
                    format!("on a sample of {} pages", summary.silhouette.sample_size)
                } else {
                    "on all pages".to_string()
                }
            ),
        ),
        ("Seed, n_init", format!("{}, {}", parameters.seed, parameters.n_init)),
    ];
    for (name, value) in overview {
        let _ = writeln!(html, "<tr><th>{}</th><td>{}</td></tr>", escape(name), escape(&value));
    }
    let _ = writeln!(html, "</table>");

    if let Some(map) = &pictures.map {
        let _ = writeln!(
            html,
            "<h2>Map</h2>\n<p>Every page at its first two principal components, coloured by cluster.</p>\n<img src=\"{}\" alt=\"map of all pages coloured by cluster\">",
            escape(&encode_path(map))
        );
    }

    let _ = writeln!(
        html,
        "<h2>Clusters</h2>\n<table>\n<tr><th>Cluster</th><th>Pages</th><th>Documents</th><th>Cohesion</th><th>Nearest cluster</th><th>Medoid</th><th>Documents nearest the centroid</th></tr>"
    );
    for cluster in &summary.clusters {
        let cohesion = cluster.cohesion.map_or("n/a".to_string(), |value| format!("{value:.3}"));
        let nearest = cluster
            .nearest_cluster
            .as_ref()
            .map_or("none".to_string(), |nearest| format!("{} ({:.3})", nearest.id, nearest.distance));
        let medoid = format!("{} p{}", cluster.medoid.document, cluster.medoid.page);
        let documents: Vec<String> = cluster.nearest_documents.iter().take(5).map(|d| escape(&d.document)).collect();
        let _ = writeln!(
            html,
            "<tr><td><a href=\"#cluster-{id}\">{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            cluster.page_count,
            cluster.document_count,
            cohesion,
            escape(&nearest),
            escape(&medoid),
            documents.join("<br>"),
            id = cluster.id
        );
    }
    let _ = writeln!(html, "</table>");

    for cluster in &summary.clusters {
        let _ = writeln!(html, "<h3 id=\"cluster-{0}\">Cluster {0}</h3>", cluster.id);
        if let Some(sheet) = pictures.contact_sheets.get(&cluster.id) {
            let _ = writeln!(
                html,
                "<img src=\"{}\" alt=\"most typical pages of cluster {}\">",
                escape(&encode_path(sheet)),
                cluster.id
            );
        }
    }

    write_duplicates(&mut html, summary);
    write_drift(&mut html, summary);
    let _ = writeln!(html, "<p id=\"image-status\" class=\"image-status\"></p>\n<script>\n{IMAGE_CHECK}</script>");
    let _ = writeln!(html, "</body>\n</html>");
    html
}

fn k_choice_text(summary: &ClusterSummary) -> String {
    if summary.parameters.k_candidates.is_empty() {
        return "given".to_string();
    }
    let scores: Vec<String> = summary
        .parameters
        .k_candidates
        .iter()
        .map(|candidate| format!("k={}: {:.3}", candidate.k, candidate.silhouette))
        .collect();
    format!("highest silhouette of {}", scores.join(", "))
}

fn write_duplicates(html: &mut String, summary: &ClusterSummary) {
    let duplicates = &summary.near_duplicates;
    let _ = writeln!(html, "<h2>Near-duplicate pages</h2>");
    if !duplicates.computed {
        let _ = writeln!(html, "<p>Not computed ({}).</p>", escape(&duplicates.scope));
        return;
    }
    let _ = writeln!(
        html,
        "<p>{} groups of pages with cosine similarity of at least {} ({}).</p>",
        duplicates.groups.len(),
        duplicates.threshold,
        escape(&duplicates.scope)
    );
    if duplicates.groups.is_empty() {
        return;
    }
    let _ = writeln!(html, "<table>\n<tr><th>Pages</th><th>Members</th></tr>");
    for group in duplicates.groups.iter().take(MAX_LISTED_DUPLICATE_GROUPS) {
        let members: Vec<String> =
            group.iter().map(|page| escape(&format!("{} p{}", page.document, page.page))).collect();
        let _ = writeln!(html, "<tr><td>{}</td><td>{}</td></tr>", group.len(), members.join("<br>"));
    }
    let _ = writeln!(html, "</table>");
    if duplicates.groups.len() > MAX_LISTED_DUPLICATE_GROUPS {
        let _ = writeln!(
            html,
            "<p>{} more groups are listed in the summary JSON.</p>",
            duplicates.groups.len() - MAX_LISTED_DUPLICATE_GROUPS
        );
    }
}

fn write_drift(html: &mut String, summary: &ClusterSummary) {
    let Some(drift) = &summary.drift else {
        return;
    };
    let _ = writeln!(
        html,
        "<h2>Changes since snapshot {}</h2>\n<p>Clusters matched {}.</p>\n<table>\n<tr><th>Change</th><th>Previous cluster</th><th>Current cluster</th><th>Previous pages</th><th>Current pages</th></tr>",
        escape(&drift.previous_snapshot_id),
        escape(&drift.matching)
    );
    for (change, pairs) in [("grew", &drift.grew), ("shrank", &drift.shrank), ("unchanged", &drift.unchanged)] {
        for pair in pairs {
            let _ = writeln!(
                html,
                "<tr><td>{change}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                pair.previous_id, pair.current_id, pair.previous_pages, pair.current_pages
            );
        }
    }
    for cluster in &drift.appeared {
        let _ = writeln!(html, "<tr><td>appeared</td><td></td><td>{}</td><td></td><td>{}</td></tr>", cluster.id, cluster.pages);
    }
    for cluster in &drift.disappeared {
        let _ = writeln!(html, "<tr><td>disappeared</td><td>{}</td><td></td><td>{}</td><td></td></tr>", cluster.id, cluster.pages);
    }
    let _ = writeln!(html, "</table>");
}

/// Percent-encodes a relative path for a `src` attribute, keeping `/` and the unreserved
/// characters of RFC 3986, so names with spaces or `#` still resolve.
fn encode_path(path: &str) -> String {
    let mut encoded = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            encoded.push(byte as char);
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

/// Escapes text for HTML element content and double-quoted attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Counts loaded and broken images once every image has finished, because `load` fires on
/// `window` only after each `<img>` has loaded or failed. A browser without script shows the
/// report unchanged, without the count.
const IMAGE_CHECK: &str = r#"window.addEventListener("load", function () {
  var images = document.images;
  var loaded = 0;
  var broken = 0;
  for (var i = 0; i < images.length; i++) {
    var image = images[i];
    if (image.complete && image.naturalWidth > 0) {
      loaded++;
      continue;
    }
    broken++;
    var note = document.createElement("p");
    note.className = "image-missing";
    note.textContent = "image missing: " + decodeURIComponent(image.getAttribute("src"));
    image.parentNode.insertBefore(note, image.nextSibling);
  }
  var status = document.getElementById("image-status");
  status.setAttribute("data-loaded", loaded);
  status.setAttribute("data-broken", broken);
  status.textContent = loaded + " of " + images.length + " images loaded" + (broken > 0 ? ", " + broken + " missing" : "");
});
"#;

const STYLE: &str = "body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
img { max-width: 100%; border: 1px solid #ddd; }
.image-missing { color: #b00; font-weight: bold; }
.image-status { color: #666; font-size: 0.9em; }
";

//! scripts/grafana-dashboard.json queries only metrics tidegate exports: every name in its
//! queries is in README.md's metrics table, and every name there is one that
//! src/metrics/prometheus.rs writes. A renamed metric fails here, not on an operator's
//! empty panel.

use std::collections::BTreeSet;
use std::path::Path;

/// The `tidegate_*` names in `text`, in order.
fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("tidegate_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        names.push(name);
    }
    names
}

fn read(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The names in the first column of README.md's metrics table, and which are histograms
/// (their series are `_bucket`, `_sum` and `_count`).
fn readme_metrics() -> (BTreeSet<String>, BTreeSet<String>) {
    let readme = read("README.md");
    let rows = readme.lines().filter(|l| l.starts_with("| `tidegate_"));
    let mut names = BTreeSet::new();
    let mut histograms = BTreeSet::new();
    for row in rows {
        let (metric, what) = row[1..].split_once('|').expect("a table row");
        for name in metric_names(metric) {
            if what.contains("histogram") {
                histograms.insert(name.clone());
            }
            names.insert(name);
        }
    }
    (names, histograms)
}

/// Every `expr` of every panel target, rows' nested panels included.
fn queries(panels: &[serde_json::Value], out: &mut Vec<String>) {
    for panel in panels {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("a target's expr");
            out.push(expr.to_string());
        }
        if let Some(nested) = panel["panels"].as_array() {
            queries(nested, out);
        }
    }
}

#[test]
fn the_dashboard_queries_only_metrics_tidegate_exports() {
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("scripts/grafana-dashboard.json")).expect("valid JSON");
    let mut exprs = Vec::new();
    queries(dashboard["panels"].as_array().expect("panels"), &mut exprs);
    let (exported, histograms) = readme_metrics();
    let mut queried = BTreeSet::new();
    for expr in &exprs {
        for name in metric_names(expr) {
            let series_of = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .filter(|base| histograms.contains(*base));
            let name = series_of.map_or(name.clone(), str::to_string);
            assert!(
                exported.contains(&name),
                "the dashboard queries {name} (in {expr}), which README.md's metrics table \
                 does not list"
            );
            queried.insert(name);
        }
    }
    // Every metric has a panel, but what is there only to be read once (build info) or is
    // the sum of a panel's own series (requests of all APIs).
    for name in &exported {
        let on_no_panel = ["tidegate_build_info", "tidegate_requests_total"];
        assert!(
            queried.contains(name) || on_no_panel.contains(&name.as_str()),
            "no panel shows {name}"
        );
    }
}

#[test]
fn every_metric_in_the_readme_table_is_one_tidegate_writes() {
    let renderer = read("src/metrics/prometheus.rs");
    let (exported, _) = readme_metrics();
    assert!(exported.len() > 20, "the table was not found: {exported:?}");
    for name in exported {
        assert!(
            renderer.contains(&format!("\"{name}\"")),
            "README.md lists {name}, which src/metrics/prometheus.rs does not write"
        );
    }
}

#[test]
fn every_metric_tidegate_writes_is_in_the_readme_table() {
    let renderer = read("src/metrics/prometheus.rs");
    let (documented, _) = readme_metrics();
    // Every string literal that is a whole metric name.
    let written = renderer.split("\"tidegate_").skip(1).filter_map(|rest| {
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
        rest[end..]
            .starts_with('"')
            .then(|| format!("tidegate_{}", &rest[..end]))
    });
    for name in written {
        assert!(
            documented.contains(&name),
            "src/metrics/prometheus.rs writes {name}, which README.md's metrics table does not list"
        );
    }
}

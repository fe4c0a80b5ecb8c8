//! The admin listener's `/metrics`, scraped and parsed.

use reqwest::StatusCode;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// A scrape of the admin listener's `/metrics`, parsed.
pub struct Metrics(Vec<(String, BTreeMap<String, String>, f64)>);

impl Metrics {
    /// The sum over every series named `name` whose labels include `labels`; 0 when none.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(v))
            })
            .map(|(_, _, value)| value)
            .sum()
    }

    /// Whether any series is named `name`.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _, _)| n == name)
    }
}

/// Scrapes the Prometheus text format from `admin`.
pub async fn scrape(admin: SocketAddr) -> Metrics {
    let response = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    Metrics(
        text.lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(parse_sample)
            .collect(),
    )
}

/// `name{k="v",...} value` (label values here hold no quotes or escapes).
fn parse_sample(line: &str) -> (String, BTreeMap<String, String>, f64) {
    let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
    let value = value.parse().expect("a sample's value is a number");
    let Some((name, labels)) = series.split_once('{') else {
        return (series.to_owned(), BTreeMap::new(), value);
    };
    let mut parsed = BTreeMap::new();
    let mut rest = labels.strip_suffix('}').expect("labels end with }");
    while let Some((key, after)) = rest.split_once("=\"") {
        let (value, after) = after.split_once('"').expect("a label value is quoted");
        parsed.insert(key.to_owned(), value.to_owned());
        rest = after.strip_prefix(',').unwrap_or(after);
    }
    (name.to_owned(), parsed, value)
}

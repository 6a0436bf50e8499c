//! The statistics the scenarios and the report share, and the progress line.

use std::fmt;

/// The median of `values` (NaN for none).
pub(crate) fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// The mean of counts (0 for none).
pub(crate) fn mean(values: impl IntoIterator<Item = usize>) -> f64 {
    let (sum, n) = values
        .into_iter()
        .fold((0usize, 0usize), |(sum, n), v| (sum + v, n + 1));
    sum as f64 / n.max(1) as f64
}

/// The smallest and the largest of `values`.
pub(crate) fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(min, max), &v| {
            (min.min(v), max.max(v))
        })
}

/// A progress line on stderr.
pub(crate) fn progress(args: fmt::Arguments<'_>) {
    eprintln!("compare: {args}");
}

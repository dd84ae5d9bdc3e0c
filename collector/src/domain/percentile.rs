//! The product's one percentile definition, shared by the dashboard (Explore, Web Vitals) and
//! alert rules (their previews and evaluations), so the same events give the same p75 in both.

/// The `q` quantile (0 to 1) of `values`, interpolated linearly between the two nearest ranks,
/// as PostgreSQL's `percentile_cont` and most statistics tools compute it; `None` when there
/// are no values. Sorts `values` in place.
pub fn percentile(values: &mut [f64], q: f64) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    percentile_of_sorted(values, q)
}

/// [`percentile`] of values already in ascending order.
pub fn percentile_of_sorted(values: &[f64], q: f64) -> Option<f64> {
    let last = values.len().checked_sub(1)?;
    #[allow(clippy::cast_precision_loss)]
    let pos = q.clamp(0.0, 1.0) * last as f64;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(last);
    #[allow(clippy::cast_precision_loss)]
    let frac = pos - lo as f64;
    Some(values[lo] + (values[hi] - values[lo]) * frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_between_ranks_like_percentile_cont() {
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(percentile(&mut v, 0.75), Some(3.25));
        assert_eq!(percentile(&mut v, 0.5), Some(2.5));
        assert_eq!(percentile(&mut v, 0.0), Some(1.0));
        assert_eq!(percentile(&mut v, 1.0), Some(4.0));
        assert_eq!(percentile(&mut [7.0], 0.75), Some(7.0));
        assert_eq!(percentile(&mut [], 0.75), None);
    }
}

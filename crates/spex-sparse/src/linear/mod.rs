//! Linear regression in the Fourier basis over a given support: cross-validated lasso and ridge,
//! least squares, and the [`Baseline`]s that decoders are measured against.
//!
//! Every fit takes masks `[m, n]` and one value per mask, builds the `±1` Fourier characters of
//! the support one bit per row ([`columns`]), and always fits an unpenalised intercept: the
//! coefficient of `∅`, when the support holds it, is that intercept. Penalties are chosen on
//! the contiguous folds of [`crate::proxy::cv::fold_ranges`], the folds of the ProxySPEX proxy.
//!
//! Size caps: at most [`MAX_COLUMNS`] columns (Gram matrices of `12 k^2` bytes, 432 MB at the cap)
//! and at most [`MAX_CELLS`] columns x rows; above either, and when the Gram matrix would not fit
//! in the memory available, an error names the support and its size.

pub mod baseline;
pub mod columns;
pub mod lasso;
pub mod ridge_cv;
pub mod support;

pub use baseline::Baseline;
pub use lasso::{lasso_cv, LassoFit};
pub use ridge_cv::{least_squares, ridge_alphas, ridge_cv, RidgeCvFit};
pub use support::{low_order_support, LAMBDAS, MAX_CELLS, MAX_COLUMNS};

//! Placeholder until the cancellation ports land.

//! tokio adapter for single-flight (being written).

//! async-std adapter for single-flight (being written).

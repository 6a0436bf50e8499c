//! Benchmarks of single-flight against its peers (being written).

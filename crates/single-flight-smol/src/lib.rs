//! smol adapter for single-flight (being written).

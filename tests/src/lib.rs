//! Cross-runtime integration and acceptance tests for the single-flight workspace.
//!
//! The library part holds the helpers the test files share (runtimes, gates, counters).

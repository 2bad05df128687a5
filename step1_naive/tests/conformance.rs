//! The grader's conformance scenarios, run against this step's binary (see grader/README.md).
grader::conformance_tests!(env!("CARGO_BIN_EXE_step1_naive"));

//! The whole black-box grader, run against this step's binary.
grader::conformance_tests!(env!("CARGO_BIN_EXE_step3_pool"));

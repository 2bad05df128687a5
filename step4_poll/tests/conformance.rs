//! The black-box grader's scenarios, run against this step's binary.
grader::conformance_tests!(env!("CARGO_BIN_EXE_step4_poll"));

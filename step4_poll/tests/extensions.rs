//! The grader's extension scenarios, off by default: `make grade EX=<name> STEP=<step>`.
grader::extension_tests!(env!("CARGO_BIN_EXE_step4_poll"));

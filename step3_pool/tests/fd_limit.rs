//! Out of file descriptors, under `ulimit -n 64`: a newcomer gets `ERR server-full` and is
//! closed, and the room goes on.
#[test]
fn out_of_descriptors_refused() {
    grader::out_of_descriptors_refused(env!("CARGO_BIN_EXE_step3_pool"));
}

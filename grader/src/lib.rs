//! Black-box grader: tests any chat server binary from outside, over TCP, against the
//! contract in `PROTOCOL.md`.
//!
//! A step's `tests/conformance.rs` is one line,
//! `grader::conformance_tests!(env!("CARGO_BIN_EXE_step1_naive"));`, which expands to one
//! `#[test]` per scenario. Each scenario starts its own server with [`Server::start`], talks to
//! it through [`Client`]s, and ends by checking that the server is still alive and serving.
//!
//! Every read has a deadline, so no test can hang; every failure says which client sent what,
//! what was expected and what arrived instead.

mod client;
mod extensions;
mod scenarios;
mod server;

pub use client::Client;
pub use extensions::*;
pub use scenarios::*;
pub use server::Server;

use std::time::Duration;

/// The longest line the contract allows, not counting CR/LF.
pub const MAX_LINE: usize = 1024;

/// How long a server may take to print its `listening on` line.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a reply or a forwarded message may take to arrive. Generous: the grader must pass
/// on a loaded two-core machine next to a server that spins.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the grader listens to be sure that nothing arrives.
pub const SILENCE_WINDOW: Duration = Duration::from_millis(200);
/// How long the server may take to close a connection it has to close.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long any single write or a stream of messages may stall before the room counts as blocked.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Expands to one `#[test]` per conformance scenario, run against the server binary `$bin`.
///
/// `$bin` is evaluated in each test and must give a `&str` path, usually
/// `env!("CARGO_BIN_EXE_<crate>")`.
#[macro_export]
macro_rules! conformance_tests {
    ($bin:expr) => {
        $crate::conformance_tests!(@each $bin;
            two_clients_broadcast,
            ten_clients_broadcast,
            unregistered_connection_receives_nothing,
            two_hundred_clients_each_receive_every_message,
            order_three_senders_three_receivers,
            unknown_command_stays_open,
            wrong_case_command_stays_open,
            missing_argument_stays_open,
            invalid_name_then_retry,
            name_of_32_bytes_accepted_33_refused,
            name_taken_then_retry,
            already_registered_keeps_first_name,
            msg_before_user_not_registered,
            empty_message_refused,
            invalid_utf8_refused,
            control_character_in_text_refused,
            utf8_text_delivered_intact,
            one_byte_per_write,
            hundred_lines_in_one_write,
            crlf_line_endings,
            empty_lines_ignored,
            line_of_1024_bytes_accepted,
            line_of_1025_bytes_refused_and_closed,
            long_line_without_newline_refused_and_closed,
            name_freed_when_connection_closes,
            send_then_close_at_once,
            reset_mid_line_leaves_others_unaffected,
            slow_reader_is_cut_and_others_get_everything,
            flood_reaches_a_fast_and_a_paced_reader,
            sixteen_clients_flood_and_each_gets_everything,
            client_reading_a_byte_now_and_then_is_cut_and_the_room_moves_on,
            cut_client_that_never_closes_is_let_go,
            bad_address_exits_with_status_2,
            address_in_use_exits_with_status_2,
        );
    };
    (@each $bin:expr; $($scenario:ident),* $(,)?) => {
        $(
            #[test]
            fn $scenario() {
                $crate::$scenario($bin);
            }
        )*
    };
}

/// Expands to one `#[test]` per extension scenario (`grader/EXTENSIONS.md`), run against the
/// server binary `$bin`. Every one is `#[ignore]`d, and the Makefile's test targets also leave
/// them out by name (`--skip`), so `make test` neither runs nor lists them; `make grade EX=who
/// STEP=step4` runs one extension's scenarios, whose names start with `ext_who_`.
#[macro_export]
macro_rules! extension_tests {
    ($bin:expr) => {
        $crate::extension_tests!(@each $bin;
            "extension: make grade EX=join-leave STEP=stepN, N = this crate's step"
                => ext_join_leave_notices_when_clients_come_and_go,
            "extension: make grade EX=join-leave STEP=stepN, N = this crate's step"
                => ext_join_leave_leave_comes_after_the_last_message,
            "extension: make grade EX=who STEP=stepN, N = this crate's step"
                => ext_who_lists_registered_names_in_byte_order,
            "extension: make grade EX=who STEP=stepN, N = this crate's step"
                => ext_who_refusals,
            "extension: make grade EX=priv STEP=stepN, N = this crate's step"
                => ext_priv_reaches_only_the_named_client,
            "extension: make grade EX=priv STEP=stepN, N = this crate's step"
                => ext_priv_refusals,
            "extension: make grade EX=nick STEP=stepN, N = this crate's step"
                => ext_nick_renames_and_tells_the_others,
            "extension: make grade EX=nick STEP=stepN, N = this crate's step"
                => ext_nick_refusals,
            "extension: make grade EX=rate-limit STEP=stepN, N = this crate's step"
                => ext_rate_limit_flood_is_refused_and_the_connection_stays,
            "extension: make grade EX=idle-cpu STEP=stepN, N = this crate's step"
                => ext_idle_cpu_silent_server_sleeps_and_still_answers_fast,
            "extension: make grade EX=pool-grows STEP=stepN, N = this crate's step"
                => ext_pool_grows_from_workers_up_to_max_workers,
        );
    };
    (@each $bin:expr; $($reason:literal => $scenario:ident),* $(,)?) => {
        $(
            #[test]
            #[ignore = $reason]
            fn $scenario() {
                $crate::$scenario($bin);
            }
        )*
    };
}

//! A join token as a user may paste it: parsed or refused; a parsed one prints back to a
//! token that parses to the same.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(token) = text.parse::<certs::JoinToken>() else { return };
    let again: certs::JoinToken = token.to_string().parse().expect("a printed token parses");
    assert_eq!(again, token);
});

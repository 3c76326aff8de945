//! Embeds a build number: the build's UTC time as YYYYMMDDhhmmss, or `SOURCE_DATE_EPOCH`'s
//! when set (reproducible builds). The version of both binaries is `CARGO_PKG_VERSION+BUILD`
//! (see `src/version.rs`); updates compare versions by semver, then by this number. It lives
//! here, in the crate both binaries link, so `marmotd` and `marmotctl` built together carry
//! the same stamp. The script re-runs whenever any crate's sources change, so a rebuilt daemon
//! gets a newer number (a `rerun-if-env-changed` alone would freeze it).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let sources =
        ["src", "build.rs", "Cargo.toml", "../daemon/src", "../ctl/src", "../ctl/client/src"];
    for path in sources.into_iter().chain(["../certs/src"]) {
        println!("cargo:rerun-if-changed={path}");
    }
    let when = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or_else(SystemTime::now, |secs| UNIX_EPOCH + Duration::from_secs(secs));
    let stamp = humantime::format_rfc3339_seconds(when).to_string();
    let digits: String = stamp.chars().filter(char::is_ascii_digit).collect();
    println!("cargo:rustc-env=MARMOT_BUILD={digits}");
}

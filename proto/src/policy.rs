//! A laptop's rules: when its worker works and with how many slots (on battery, too hot,
//! outside its hours), and what a worker tells the coordinator about it: its slots now and
//! why not all of them ([`Standing`]).
//!
//! The rules are parsed here, where the worker's flags and (later) `marmotctl policy set`
//! both read them, with one error wording. The decisions are the worker's
//! (`marmotd::laptop::govern`).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// What a worker does while a condition holds (on battery, in use).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Takes no chunks; its command units are suspended.
    Pause,
    /// As if the condition did not hold.
    Run,
    /// At most this many slots (at least 1).
    Slots(u32),
}

impl FromStr for Mode {
    type Err = String;

    /// `pause`, `run` or `slots=N`.
    fn from_str(s: &str) -> Result<Mode, String> {
        match s {
            "pause" => Ok(Mode::Pause),
            "run" => Ok(Mode::Run),
            _ => match s.strip_prefix("slots=").map(str::parse::<u32>) {
                Some(Ok(n @ 1..=4096)) => Ok(Mode::Slots(n)),
                _ => Err(format!("`{s}` is not one of pause, run, slots=N (N from 1 to 4096)")),
            },
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Pause => f.write_str("pause"),
            Mode::Run => f.write_str("run"),
            Mode::Slots(n) => write!(f, "slots={n}"),
        }
    }
}

/// Times of day, local, as ranges of minutes since midnight; a range whose end comes before
/// its start runs past midnight (`22:00-07:00`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hours(Vec<(u16, u16)>);

/// The most ranges `--hours` takes.
pub const MAX_HOURS: usize = 24;

impl Hours {
    /// Whether `minute` (0 to 1439 after local midnight) falls in one of the ranges, its
    /// start included and its end not.
    pub fn contain(&self, minute: u16) -> bool {
        self.0.iter().any(|&(from, to)| match from < to {
            true => (from..to).contains(&minute),
            false => minute >= from || minute < to,
        })
    }
}

impl FromStr for Hours {
    type Err = String;

    /// `HH:MM-HH:MM[,HH:MM-HH:MM]...`
    fn from_str(s: &str) -> Result<Hours, String> {
        let minute = |t: &str| -> Option<u16> {
            let (h, m) = t.split_once(':')?;
            let digits = |d: &str| d.len() == 2 && d.bytes().all(|b| b.is_ascii_digit());
            let (h, m): (u16, u16) = match digits(h) && digits(m) {
                true => (h.parse().ok()?, m.parse().ok()?),
                false => return None,
            };
            (h < 24 && m < 60).then_some(h * 60 + m)
        };
        let ranges: Vec<&str> = s.split(',').collect();
        if ranges.len() > MAX_HOURS {
            return Err(format!("{} ranges of hours: at most {MAX_HOURS}", ranges.len()));
        }
        let mut hours = Vec::new();
        for range in ranges {
            let parsed = range.split_once('-').and_then(|(a, b)| Some((minute(a)?, minute(b)?)));
            match parsed {
                Some((from, to)) if from != to => hours.push((from, to)),
                Some(_) => return Err(format!("`{range}` is an empty range of hours")),
                None => {
                    return Err(format!(
                        "`{range}` is not a range of hours: write HH:MM-HH:MM, e.g. 22:00-07:00"
                    ))
                }
            }
        }
        Ok(Hours(hours))
    }
}

impl fmt::Display for Hours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (from, to)) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            write!(f, "{sep}{:02}:{:02}-{:02}:{:02}", from / 60, from % 60, to / 60, to % 60)?;
        }
        Ok(())
    }
}

/// The hottest a laptop gets by default before its worker gives up slots, in °C: below where
/// laptop CPUs throttle themselves (95 to 100 °C), above what a busy laptop reaches with its
/// fan working.
pub const DEFAULT_MAX_TEMP: u16 = 85;
/// How far below `--max-temp` the temperature must fall before the slots come back.
pub const COOL_BY: u16 = 10;

/// One worker's rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// While on battery.
    pub on_battery: Mode,
    /// On battery below this charge (percent), it pauses whatever `on_battery` says.
    pub battery_below: Option<u8>,
    /// Above this temperature (°C), slots are given up one at a time.
    pub max_temp: u16,
    /// It works only in these hours (all day when `None`).
    pub hours: Option<Hours>,
    /// While someone uses the laptop (keyboard or mouse input within `idle_after`).
    pub in_use: Mode,
    pub idle_after: Duration,
}

/// How long without keyboard or mouse input before a laptop counts as not in use.
pub const DEFAULT_IDLE_AFTER: Duration = Duration::from_secs(180);

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            on_battery: Mode::Pause,
            battery_below: None,
            max_temp: DEFAULT_MAX_TEMP,
            hours: None,
            in_use: Mode::Run,
            idle_after: DEFAULT_IDLE_AFTER,
        }
    }
}

/// Parses a `--battery-below` percentage (1 to 100).
pub fn parse_percent(s: &str) -> Result<u8, String> {
    match s.trim_end_matches('%').parse::<u8>() {
        Ok(p @ 1..=100) => Ok(p),
        _ => Err(format!("`{s}` is not a percentage from 1 to 100")),
    }
}

/// Parses a `--max-temp` in °C (40 to 120: below, a laptop would never work; above, it would
/// have shut down).
pub fn parse_celsius(s: &str) -> Result<u16, String> {
    match s.trim_end_matches('C').trim_end_matches('°').parse::<u16>() {
        Ok(t @ 40..=120) => Ok(t),
        _ => Err(format!("`{s}` is not a temperature from 40 to 120 °C")),
    }
}

/// Why a worker gives fewer slots than it has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Holdback {
    /// On battery (its charge, when known).
    Battery { charge: Option<u8> },
    /// Too hot: the hottest reading, in °C.
    Heat { celsius: u16 },
    /// Outside its `--hours`.
    Hours,
    /// Someone uses the laptop (keyboard or mouse within `--idle-after`).
    InUse,
    /// The machine is going to sleep.
    Sleeping,
}

impl Holdback {
    /// Its kind in one word, for a metric's label: `battery`, `heat`, `hours`.
    pub fn kind(&self) -> &'static str {
        match self {
            Holdback::Battery { .. } => "battery",
            Holdback::Heat { .. } => "heat",
            Holdback::Hours => "hours",
            Holdback::InUse => "in_use",
            Holdback::Sleeping => "sleeping",
        }
    }

    /// Whether every value is one a laptop can report (bytes from the network).
    pub fn check(&self) -> Result<(), String> {
        match *self {
            Holdback::Battery { charge: Some(c) } if c > 100 => Err(format!("a charge of {c}%")),
            Holdback::Heat { celsius } if celsius > 250 => Err(format!("{celsius} °C")),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Holdback {
    /// In a few words, for `marmotctl workers` and the log: `battery 34%`, `91 °C`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holdback::Battery { charge: Some(c) } => write!(f, "battery {c}%"),
            Holdback::Battery { charge: None } => f.write_str("on battery"),
            Holdback::Heat { celsius } => write!(f, "{celsius} °C"),
            Holdback::Hours => f.write_str("outside hours"),
            Holdback::InUse => f.write_str("in use"),
            Holdback::Sleeping => f.write_str("sleeping"),
        }
    }
}

/// What a worker gives now: sent when it changes (and at the start of each session when not
/// all its slots).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    /// Slots it takes chunks for now: 0 when paused, at most its slots in full.
    pub slots: u32,
    /// Why not all of them (`None`: all of them).
    pub why: Option<Holdback>,
}

impl Standing {
    /// Whether it is one a worker with `full` slots can send.
    pub fn check(&self, full: u32) -> Result<(), String> {
        if self.slots > full {
            return Err(format!("{} slots now, of {full}", self.slots));
        }
        if self.why.is_none() && self.slots != full {
            return Err(format!("{} slots of {full} and no reason", self.slots));
        }
        self.why.as_ref().map_or(Ok(()), Holdback::check)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_and_print_the_same() {
        for s in ["pause", "run", "slots=1", "slots=4096"] {
            assert_eq!(s.parse::<Mode>().unwrap().to_string(), s);
        }
        assert_eq!("slots=2".parse(), Ok(Mode::Slots(2)));
        for bad in ["", "Pause", "slots=0", "slots=4097", "slots=", "slots=x", "stop"] {
            let e = bad.parse::<Mode>().unwrap_err();
            assert!(e.contains("pause, run, slots=N"), "{bad}: {e}");
        }
    }

    #[test]
    fn hours_wrap_midnight_and_include_their_start_only() {
        let night: Hours = "22:00-07:00".parse().unwrap();
        let at = |h: u16, m: u16| h * 60 + m;
        assert!(night.contain(at(22, 0)) && night.contain(at(23, 59)) && night.contain(0));
        assert!(night.contain(at(6, 59)) && !night.contain(at(7, 0)) && !night.contain(at(21, 59)));
        assert!(!night.contain(at(12, 0)));
        let two: Hours = "12:00-13:30,18:05-19:00".parse().unwrap();
        assert!(two.contain(at(12, 0)) && two.contain(at(13, 29)) && !two.contain(at(13, 30)));
        assert!(two.contain(at(18, 5)) && !two.contain(at(18, 4)) && !two.contain(at(19, 0)));
        assert!(!two.contain(at(15, 0)));
        assert_eq!(two.to_string(), "12:00-13:30,18:05-19:00");
        assert_eq!("00:00-23:59".parse::<Hours>().unwrap().to_string(), "00:00-23:59");
    }

    #[test]
    fn bad_hours_say_what_to_write() {
        for bad in ["", "22-07", "22:00", "24:00-01:00", "10:60-11:00", "1:00-2:00", "a:bc-01:00"] {
            let e = bad.parse::<Hours>().unwrap_err();
            assert!(e.contains("HH:MM-HH:MM"), "{bad}: {e}");
        }
        assert!("10:00-10:00".parse::<Hours>().unwrap_err().contains("empty range"));
        let many = vec!["01:00-02:00"; MAX_HOURS + 1].join(",");
        assert!(many.parse::<Hours>().unwrap_err().contains("at most 24"));
        assert!(vec!["01:00-02:00"; MAX_HOURS].join(",").parse::<Hours>().is_ok());
    }

    #[test]
    fn percentages_and_temperatures_are_bounded() {
        assert_eq!(parse_percent("20"), Ok(20));
        assert_eq!(parse_percent("100%"), Ok(100));
        assert_eq!(parse_percent("1"), Ok(1));
        for bad in ["0", "101", "x", "-5"] {
            assert!(parse_percent(bad).unwrap_err().contains("1 to 100"), "{bad}");
        }
        assert_eq!(parse_celsius("85"), Ok(85));
        assert_eq!(parse_celsius("90°C"), Ok(90));
        assert_eq!(parse_celsius("40"), Ok(40));
        assert_eq!(parse_celsius("120"), Ok(120));
        for bad in ["39", "121", "hot"] {
            assert!(parse_celsius(bad).unwrap_err().contains("40 to 120"), "{bad}");
        }
    }

    #[test]
    fn a_standing_is_checked_against_the_slots_said_at_hello() {
        let paused = Standing { slots: 0, why: Some(Holdback::Battery { charge: Some(34) }) };
        assert_eq!(paused.check(4), Ok(()));
        assert_eq!(paused.why.as_ref().unwrap().to_string(), "battery 34%");
        assert!(Standing { slots: 5, why: None }.check(4).is_err());
        assert!(Standing { slots: 4, why: None }.check(4).is_ok());
        assert!(Standing { slots: 3, why: None }.check(4).is_err());
        assert!(Standing { slots: 4, why: Some(Holdback::Hours) }.check(4).is_ok());
        let liar = Standing { slots: 0, why: Some(Holdback::Battery { charge: Some(101) }) };
        assert!(liar.check(4).is_err());
        let hot = Standing { slots: 1, why: Some(Holdback::Heat { celsius: 251 }) };
        assert!(hot.check(4).is_err());
        assert_eq!(Holdback::Heat { celsius: 91 }.to_string(), "91 °C");
        assert_eq!(Holdback::Heat { celsius: 250 }.check(), Ok(()));
        assert_eq!(Holdback::Battery { charge: Some(100) }.check(), Ok(()), "full");
        assert_eq!(Holdback::Battery { charge: None }.to_string(), "on battery");
        assert_eq!(Holdback::Hours.to_string(), "outside hours");
        let kinds = [
            Holdback::Battery { charge: None },
            Holdback::Heat { celsius: 1 },
            Holdback::Hours,
            Holdback::InUse,
            Holdback::Sleeping,
        ];
        assert_eq!(
            kinds.clone().map(|k| k.kind()),
            ["battery", "heat", "hours", "in_use", "sleeping"]
        );
        let words = kinds.map(|k| k.to_string());
        assert_eq!(words, ["on battery", "1 °C", "outside hours", "in use", "sleeping"]);
    }
}

//! The laptop's facts, read where Linux keeps them: power supplies under
//! `/sys/class/power_supply` (mains online, a battery's charge and status), heat under
//! `/sys/class/thermal` (every thermal zone, in millidegrees), keyboard and touchpad
//! interrupts in `/proc/interrupts` (the built-in keyboard's `i8042`, touchpads' `ELAN`,
//! `SYNA` and `hid` lines; a USB keyboard shares its line with every USB device and is not
//! counted), the minute of the day from the local clock. Files that are absent, unreadable or
//! hold nonsense count as no reading.
//!
//! A hardened unit reads these too: sysfs and `/proc/interrupts` are not hidden by
//! `ProtectKernelTunables=` (read-only is all this needs), `PrivateDevices=` or
//! `ProtectProc=invisible` (which hides other users' processes, not the kernel's files).
//!
//! Tests point it at a tree of their own with `MARMOT_TEST_ROOT` (a directory standing for
//! `/`, with `sys/` and `proc/` in it), and write the files a laptop would.

use super::govern::{Facts, Input, Power};
use std::path::{Path, PathBuf};

/// The test-only variable naming a directory that stands for `/`.
pub const TEST_ROOT: &str = "MARMOT_TEST_ROOT";

/// What the worker reads its facts from.
#[derive(Clone, Debug)]
pub struct Sensors {
    sys: PathBuf,
    interrupts: PathBuf,
}

impl Sensors {
    /// The machine's own `/sys` and `/proc`, or the test's.
    pub fn from_env() -> Sensors {
        let root = std::env::var_os(TEST_ROOT).map_or_else(|| PathBuf::from("/"), PathBuf::from);
        Sensors::at(&root)
    }

    fn at(root: &Path) -> Sensors {
        Sensors { sys: root.join("sys"), interrupts: root.join("proc/interrupts") }
    }

    /// What it reads, in a few words for the log: `2 power supplies, 3 thermal zones`.
    pub fn describe(&self) -> String {
        format!(
            "{} power supplies, {} thermal zones under {}",
            entries(&self.sys.join("class/power_supply")).len(),
            self.zones().len(),
            self.sys.display()
        )
    }

    /// The facts now. Blocking (sysfs reads of a battery go through the firmware and may take
    /// milliseconds): call off the async runtime.
    pub fn read(&self) -> Facts {
        Facts {
            sleeping: false,
            power: self.power(),
            input: self.input(),
            celsius: self.hottest(),
            minute: local_minute(),
        }
    }

    /// On mains when any mains (or USB) supply is online; on battery when a battery is there
    /// and no supply is online (or, when none is listed, the battery says it is discharging);
    /// else unknown, as on a desktop.
    fn power(&self) -> Power {
        let (mut mains, mut online, mut battery, mut charge, mut discharging) =
            (false, false, false, None, false);
        for dir in entries(&self.sys.join("class/power_supply")) {
            match small(&dir.join("type")).as_deref() {
                Some("Mains" | "USB" | "USB_C" | "USB_PD") => {
                    mains = true;
                    online |= small(&dir.join("online")).as_deref() == Some("1");
                }
                Some("Battery") if small(&dir.join("present")).as_deref() != Some("0") => {
                    battery = true;
                    let read = small(&dir.join("capacity")).and_then(|c| c.parse::<u8>().ok());
                    charge = charge.or(read.filter(|&c| c <= 100));
                    discharging |= small(&dir.join("status")).as_deref() == Some("Discharging");
                }
                _ => {}
            }
        }
        match (online, battery, mains) {
            (true, _, _) => Power::Mains,
            (false, true, true) => Power::Battery { charge },
            (false, true, false) if discharging => Power::Battery { charge },
            (false, true, false) => Power::Mains,
            (false, false, _) => Power::Unknown,
        }
    }

    /// The hottest thermal zone, in °C; readings outside -40 to 200 °C are a sensor's nonsense.
    fn hottest(&self) -> Option<f64> {
        self.zones()
            .iter()
            .filter_map(|dir| small(&dir.join("temp"))?.parse::<i64>().ok())
            .map(|milli| milli as f64 / 1000.0)
            .filter(|c| (-40.0..=200.0).contains(c))
            .reduce(f64::max)
    }

    /// Keyboard and touchpad interrupts counted so far, on every CPU; unknown where no line
    /// is one of theirs.
    fn input(&self) -> Input {
        let Ok(text) = std::fs::read_to_string(&self.interrupts) else { return Input::Unknown };
        let mut lines = text.lines();
        let cpus = lines.next().map_or(0, |head| head.split_whitespace().count());
        let mut seen = None;
        for line in lines {
            let mut fields = line.split_whitespace().skip(1);
            let counts: u64 =
                fields.by_ref().take(cpus).filter_map(|n| n.parse::<u64>().ok()).sum();
            let device = fields.collect::<Vec<_>>().join(" ");
            if INPUT_DEVICES.iter().any(|name| device.contains(name)) {
                seen = Some(seen.unwrap_or(0) + counts);
            }
        }
        seen.map_or(Input::Unknown, Input::Interrupts)
    }

    /// The thermal zones' dirs (not the cooling devices beside them).
    fn zones(&self) -> Vec<PathBuf> {
        let mut zones = entries(&self.sys.join("class/thermal"));
        zones.retain(|dir| {
            dir.file_name().is_some_and(|n| n.to_string_lossy().starts_with("thermal_zone"))
        });
        zones
    }
}

/// Words in `/proc/interrupts` that name a keyboard or a pointing device of a laptop.
const INPUT_DEVICES: [&str; 6] = ["i8042", "ELAN", "SYNA", "hid", "keyboard", "touchpad"];

/// The entries of a directory, sorted; none when it cannot be read.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut list: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    list.sort();
    list
}

/// A small sysfs file's text, trimmed (at most 64 bytes read: a value, not a document).
fn small(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path).ok()?.take(64).read_to_string(&mut text).ok()?;
    Some(text.trim().to_string())
}

/// Minutes since local midnight, in the time zone the C library reads (`TZ`, else
/// `/etc/localtime`).
pub fn local_minute() -> u16 {
    // SAFETY: time(NULL) and localtime_r with pointers to locals that live across the calls.
    unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return 0;
        }
        (tm.tm_hour * 60 + tm.tm_min).clamp(0, 1439) as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, file: &str, text: &str) {
        let path = root.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn power_and_heat_read_from_a_laptops_files() {
        let dir = tempfile::tempdir().unwrap();
        let sensors = Sensors::at(dir.path());
        let sys = &dir.path().join("sys");
        assert_eq!(sensors.read().power, Power::Unknown, "no supply: a desktop");
        assert_eq!(sensors.read().celsius, None);
        write(sys, "class/power_supply/AC/type", "Mains\n");
        write(sys, "class/power_supply/AC/online", "1\n");
        write(sys, "class/power_supply/BAT0/type", "Battery\n");
        write(sys, "class/power_supply/BAT0/capacity", "34\n");
        write(sys, "class/power_supply/BAT0/status", "Charging\n");
        assert_eq!(sensors.read().power, Power::Mains);
        write(sys, "class/power_supply/AC/online", "0\n");
        assert_eq!(sensors.read().power, Power::Battery { charge: Some(34) });
        write(sys, "class/power_supply/BAT0/capacity", "340\n");
        assert_eq!(sensors.read().power, Power::Battery { charge: None }, "nonsense: unknown");
        write(sys, "class/power_supply/BAT0/present", "0\n");
        assert_eq!(sensors.read().power, Power::Unknown, "no battery in its bay");
        // A battery and no mains supply listed: its status says.
        std::fs::remove_dir_all(sys.join("class/power_supply/AC")).unwrap();
        write(sys, "class/power_supply/BAT0/present", "1\n");
        write(sys, "class/power_supply/BAT0/capacity", "80\n");
        assert_eq!(sensors.read().power, Power::Mains, "charging");
        write(sys, "class/power_supply/BAT0/status", "Discharging\n");
        assert_eq!(sensors.read().power, Power::Battery { charge: Some(80) });
        // A USB-C charger counts as mains.
        write(sys, "class/power_supply/ucsi/type", "USB\n");
        write(sys, "class/power_supply/ucsi/online", "1\n");
        assert_eq!(sensors.read().power, Power::Mains);

        write(sys, "class/thermal/thermal_zone0/temp", "45000\n");
        write(sys, "class/thermal/thermal_zone1/temp", "91500\n");
        write(sys, "class/thermal/thermal_zone2/temp", "250000\n");
        write(sys, "class/thermal/cooling_device0/temp", "99000\n");
        assert_eq!(sensors.read().celsius, Some(91.5), "the hottest sane zone");
        let cold = tempfile::tempdir().unwrap();
        write(&cold.path().join("sys"), "class/thermal/thermal_zone0/temp", "-5000\n");
        assert_eq!(Sensors::at(cold.path()).read().celsius, Some(-5.0), "a laptop in the snow");
        assert!(sensors.describe().starts_with("2 power supplies, 3 thermal zones under "));
    }

    #[test]
    fn the_local_minute_is_dates() {
        // `date` reads the same zone; the minute may turn between the two readings.
        let before = local_minute();
        let out = std::process::Command::new("date").arg("+%H %M").output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let (h, m) = text.trim().split_once(' ').unwrap();
        let date = h.parse::<u16>().unwrap() * 60 + m.parse::<u16>().unwrap();
        assert!(date == before || date == (before + 1) % 1440, "{before} vs date's {date}");
    }

    #[test]
    fn keyboard_and_touchpad_interrupts_are_counted_on_every_cpu() {
        let dir = tempfile::tempdir().unwrap();
        let sensors = Sensors::at(dir.path());
        assert_eq!(sensors.read().input, Input::Unknown, "no /proc/interrupts");
        let table = "           CPU0       CPU1
  1:          9          2   IO-APIC    1-edge      i8042
  8:          0          0   IO-APIC    8-edge      rtc0
 12:        144          0   IO-APIC   12-edge      i8042
 51:         10         20  amd_gpio    5  ELAN0001:00
 60:      99999      99999   PCI-MSI 327680-edge      xhci_hcd
NMI:          0          0   Non-maskable interrupts
";
        write(dir.path(), "proc/interrupts", table);
        assert_eq!(sensors.read().input, Input::Interrupts(9 + 2 + 144 + 10 + 20));
        let none = "           CPU0\n  8:          0   IO-APIC    8-edge      rtc0\n";
        write(dir.path(), "proc/interrupts", none);
        assert_eq!(sensors.read().input, Input::Unknown, "no input line: nothing says");
    }
}

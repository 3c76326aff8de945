//! `marmotctl run freefall`: points streamed in order into a file and a plot, checked against
//! the closed form and against a separate RK4.

use crate::oracle::{fall_rk4, ground_time};
use crate::util::*;
use std::path::Path;

/// The `t y` (or sweep) rows of a file, as numbers.
fn read_rows(path: &Path) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(path).expect("read the output file");
    text.lines()
        .map(|line| line.split(' ').map(|n| n.parse().expect("a number")).collect())
        .collect()
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).expect("read the plot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn the_notebooks_throw_streams_every_point_in_order_with_a_plot() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _workers = c.workers([("a", 1), ("b", 1)]);
    let (out, plot) = (dir.path().join("fall.txt"), dir.path().join("fall.png"));
    let result = c.json(&[
        "run",
        "freefall",
        "--out",
        out.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
        "--size",
        "640x480",
    ]);
    let (y0, v0, g, dt) = (100_000.0, 10_000.0, 9.81, 0.001);
    let landing = ground_time(y0, v0, g);
    let expected_points = (landing / dt).floor() as u64 + 1;
    assert_eq!(result["points"].as_u64(), Some(expected_points), "{result}");
    assert!(close(result["landing"]["ground_time"].as_f64().unwrap(), landing, 1e-12));
    let rows = read_rows(&out);
    assert_eq!(rows.len() as u64, expected_points);
    for (i, row) in rows.iter().enumerate() {
        let t = i as f64 * dt;
        assert!(close(row[0], t, 1e-12), "point {i}: t = {}", row[0]);
        assert!(close(row[1], y0 + v0 * t - g * t * t / 2.0, 1e-9), "point {i}: {row:?}");
    }
    assert!(rows.last().unwrap()[1] >= 0.0);
    assert_eq!(png_size(&plot), (640, 480));
    // Whoever computed them is credited with every point and chunk once. (Which of the two
    // workers that is depends on timing: on a loaded machine a straggler's backups can take
    // every chunk of a job this short; the scheduler's tests pin the in-order delivery down.)
    let workers = result["workers"].as_array().unwrap();
    let sum = |key: &str| workers.iter().map(|w| w[key].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("units"), expected_points, "{result}");
    assert!(workers.iter().all(|w| w["name"] == "a" || w["name"] == "b"), "{result}");
    assert!(sum("chunks") > 1, "{result}");
}

#[test]
fn drag_trajectories_and_sweeps_match_a_separate_rk4() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _workers = c.workers([("a", 1), ("b", 1)]);
    // Hundreds of thousands of points, cut into many chunks that each restart from a checkpoint.
    let (y0, v0, g, k, dt) = ("5000", "300", "9.81", "0.0002", "0.0001");
    let out = dir.path().join("drag.txt");
    let args = ["--y0", y0, "--v0", v0, "--g", g, "--drag", k, "--dt", dt];
    let mut run = vec!["run", "freefall", "--out", out.to_str().unwrap()];
    run.extend(args);
    let result = c.json(&run);
    let num = |s: &str| s.parse::<f64>().unwrap();
    let oracle = fall_rk4(num(y0), num(v0), num(g), num(k), num(dt));
    assert!(oracle.len() > 200_000, "{}", oracle.len());
    assert_eq!(result["points"].as_u64(), Some(oracle.len() as u64), "{result}");
    let rows = read_rows(&out);
    assert_eq!(rows.len(), oracle.len());
    for (i, (row, y)) in rows.iter().zip(&oracle).enumerate() {
        assert!(close(row[1], *y, 1e-9), "point {i}: {} vs {y}", row[1]);
    }

    // A sweep: one row per drag value, each a whole trajectory.
    let out = dir.path().join("sweep.txt");
    let plot = dir.path().join("sweep.png");
    let (o, p) = (out.to_str().unwrap(), plot.to_str().unwrap());
    let base = ["--y0", y0, "--v0", v0, "--g", g, "--dt", "0.001"];
    let mut run = vec!["run", "freefall", "--sweep-drag", "0:0.001:5", "--out", o, "--plot", p];
    run.extend(base);
    let result = c.json(&run);
    assert_eq!(result["steps"].as_u64(), Some(5), "{result}");
    let rows = read_rows(&out);
    assert_eq!(rows.len(), 5);
    for (i, row) in rows.iter().enumerate() {
        let k = 0.001 * i as f64 / 4.0;
        assert!(close(row[0], k, 1e-12), "{row:?}");
        let heights = fall_rk4(num(y0), num(v0), num(g), k, 0.001);
        let peak = heights.iter().copied().fold(f64::MIN, f64::max);
        assert!(close(row[3], peak, 1e-9), "max height at drag {k}: {row:?} vs {peak}");
        let last = (heights.len() - 1) as f64 * 0.001;
        assert!(row[1] >= last && row[1] < last + 0.001, "ground time at drag {k}: {row:?}");
    }
    assert!(close(rows[0][1], ground_time(num(y0), num(v0), num(g)), 1e-9));
    assert_eq!(png_size(&plot), (1200, 800));
}

#[test]
fn bad_freefall_input_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let _workers = c.workers([("a", 1)]);
    for (args, says) in [
        (&["--dt", "0"][..], "--dt must be positive"),
        (&["--g", "-9.81"], "--g must be positive"),
        (&["--y0", "-1"], "--y0"),
        (&["--dt", "abc"], "not a number"),
        (&["--sweep-drag", "0:1"], "A:B:STEPS"),
        (&["--size", "10x10"], "100 to 10000"),
        (&["--detach"], "cannot be detached"),
        (&["--dt", "1e-12"], "raise --dt"),
        // Physically meaningless: refused up front, not integrated for minutes.
        (&["--drag", "1e308"], "is too coarse for --drag 1e308"),
        (&["--drag", "1e-4", "--dt", "1e-300"], "over 10000000000 points to land"),
        (&["--sweep-drag", "0:1e300:3", "--dt", "1e-300"], "lower --dt"),
    ] {
        let mut run = vec!["run", "freefall"];
        run.extend(args);
        let out = c.ctl(&run);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
    }
}

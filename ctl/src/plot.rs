//! Line plots of millions of points, drawn from a per-pixel-column reduction.
//!
//! A pixel column can show at most a vertical run from its lowest to its highest point, joined
//! to its neighbours. So each column keeps four points: its first, lowest, highest and last
//! (the "M4" reduction). Drawing those in time order gives the same pixels as drawing every
//! point, with memory and drawing time bounded by the image width, not by the data.

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;
use plotters_bitmap::BitMapBackendError;
use std::path::Path;

/// The four points of one pixel column.
#[derive(Clone, Copy, Debug)]
struct Column {
    first: (f64, f64),
    low: (f64, f64),
    high: (f64, f64),
    last: (f64, f64),
}

/// A series reduced to a fixed number of columns over a known x range.
#[derive(Debug)]
pub struct Columns {
    x0: f64,
    x1: f64,
    columns: Vec<Option<Column>>,
}

impl Columns {
    /// `width` columns over `x0..=x1`.
    pub fn new(x0: f64, x1: f64, width: u32) -> Self {
        Columns { x0, x1, columns: vec![None; width.max(1) as usize] }
    }

    /// Adds a point; points must come in increasing x.
    pub fn add(&mut self, x: f64, y: f64) {
        let span = (self.x1 - self.x0).max(f64::MIN_POSITIVE);
        let last = self.columns.len() - 1;
        let i = (((x - self.x0) / span) * last as f64).round().clamp(0.0, last as f64) as usize;
        let p = (x, y);
        match &mut self.columns[i] {
            None => self.columns[i] = Some(Column { first: p, low: p, high: p, last: p }),
            Some(c) => {
                if y < c.low.1 {
                    c.low = p;
                }
                if y > c.high.1 {
                    c.high = p;
                }
                c.last = p;
            }
        }
    }

    /// The reduced series, in x order.
    pub fn points(&self) -> Vec<(f64, f64)> {
        let mut out = Vec::with_capacity(self.columns.len() * 4);
        for c in self.columns.iter().flatten() {
            let (a, b) = if c.low.0 <= c.high.0 { (c.low, c.high) } else { (c.high, c.low) };
            for p in [c.first, a, b, c.last] {
                if out.last() != Some(&p) {
                    out.push(p);
                }
            }
        }
        out
    }

    fn y_range(&self) -> Option<(f64, f64)> {
        let cols = self.columns.iter().flatten();
        let low = cols.clone().map(|c| c.low.1).reduce(f64::min)?;
        let high = cols.map(|c| c.high.1).reduce(f64::max)?;
        Some((low, high))
    }
}

/// One panel of a figure: a series and its y axis label.
pub struct Panel<'a> {
    pub y_label: &'a str,
    pub columns: &'a Columns,
}

/// Draws the panels one above the other, sharing the x axis, into a PNG of `size` pixels.
pub fn draw_png(
    path: &Path,
    size: (u32, u32),
    title: &str,
    x_label: &str,
    panels: &[Panel<'_>],
) -> Result<()> {
    // The same font on every machine, with no system fonts needed. Registering twice is
    // harmless (the second registration is ignored).
    plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
        .map_err(|_| anyhow!("the embedded plot font is unreadable"))?;
    let root = BitMapBackend::new(path, size).into_drawing_area();
    let draw_error = |e: DrawingAreaErrorKind<BitMapBackendError>| {
        anyhow!("cannot draw {}: {}", path.display(), in_words(&e))
    };
    root.fill(&WHITE).map_err(draw_error)?;
    let root = root.titled(title, ("sans-serif", 22)).map_err(draw_error)?;
    let areas = root.split_evenly((panels.len().max(1), 1));
    for (panel, area) in panels.iter().zip(areas) {
        let (x0, x1) = (panel.columns.x0, panel.columns.x1);
        let (y0, y1) = panel.columns.y_range().unwrap_or((0.0, 1.0));
        let pad = ((y1 - y0) * 0.05).max(1e-9);
        let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
        let (x_axis, y_axis) = (Axis::new(x0, x1), Axis::new(y0 - pad, y1 + pad));
        let mut chart = ChartBuilder::on(&area)
            .margin(12)
            // Room for the last x label, centred on the right edge.
            .margin_right(36)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
            .map_err(draw_error)?;
        chart
            .configure_mesh()
            .x_desc(x_axis.title(x_label))
            .y_desc(y_axis.title(panel.y_label))
            .label_style(("sans-serif", 14))
            .x_label_formatter(&|x| x_axis.label(*x))
            .y_label_formatter(&|y| y_axis.label(*y))
            .draw()
            .map_err(draw_error)?;
        chart.draw_series(LineSeries::new(panel.columns.points(), &BLUE)).map_err(draw_error)?;
    }
    root.present().map_err(draw_error).with_context(|| format!("writing {}", path.display()))
}

/// A plotting error in words: plotters shows the bitmap backend's errors with `Debug`.
fn in_words(e: &DrawingAreaErrorKind<BitMapBackendError>) -> String {
    use plotters_backend::DrawingErrorKind::{DrawingError, FontError};
    use DrawingAreaErrorKind::BackendError;
    match e {
        BackendError(DrawingError(BitMapBackendError::IOError(io))) => io.to_string(),
        BackendError(DrawingError(BitMapBackendError::InvalidBuffer)) => "bad image buffer".into(),
        BackendError(DrawingError(BitMapBackendError::ImageError(e))) => e.to_string(),
        BackendError(FontError(e)) => format!("font: {e}"),
        other => other.to_string(),
    }
}

/// Checks that a plot can be written at `path` before the work that fills it runs, leaving
/// nothing behind: a file that was not there is created and removed again.
pub fn check_writable(path: &Path) -> Result<()> {
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("cannot write the plot {}", path.display()))?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// How one axis writes its labels: all in one format, with the same number of decimals, and
/// a power of ten shared by all of them moved into the axis title (`max height (m) ×1e6`,
/// labels 0.0 to 5.0) when the values are very large or very small.
struct Axis {
    exponent: i32,
    decimals: usize,
}

impl Axis {
    /// The axis over `lo..hi`, with about ten labels.
    fn new(lo: f64, hi: f64) -> Self {
        let largest = lo.abs().max(hi.abs());
        let exponent = if largest > 0.0 && !(1e-2..1e5).contains(&largest) {
            largest.log10().floor() as i32
        } else {
            0
        };
        let step = (hi - lo).abs() / 10f64.powi(exponent) / 10.0;
        let decimals = if step > 0.0 && step.is_finite() {
            (-step.log10().floor()).clamp(0.0, 6.0) as usize
        } else {
            0
        };
        Axis { exponent, decimals }
    }

    fn label(&self, v: f64) -> String {
        let scaled = v / 10f64.powi(self.exponent);
        // No "-0.0" for a value that rounds to zero.
        let scaled =
            if scaled.abs() < 0.5 * 10f64.powi(-(self.decimals as i32)) { 0.0 } else { scaled };
        format!("{scaled:.*}", self.decimals)
    }

    fn title(&self, text: &str) -> String {
        match self.exponent {
            0 => text.to_string(),
            e => format!("{text} ×1e{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_keep_first_extremes_and_last_in_order() {
        let mut c = Columns::new(0.0, 9.0, 2);
        for (x, y) in [(0.0, 5.0), (1.0, 9.0), (2.0, -3.0), (3.0, 4.0), (9.0, 1.0)] {
            c.add(x, y);
        }
        assert_eq!(c.points(), vec![(0.0, 5.0), (1.0, 9.0), (2.0, -3.0), (3.0, 4.0), (9.0, 1.0)]);
    }

    #[test]
    fn an_axis_has_one_format() {
        // A drag sweep's x axis: 0 to 0.001 reads 0.0 to 1.0, ×1e-3.
        let drag = Axis::new(0.0, 0.001);
        let labels: Vec<String> =
            [0.0, 0.0001, 0.0005, 0.001].iter().map(|&v| drag.label(v)).collect();
        assert_eq!(labels, ["0.0", "0.1", "0.5", "1.0"]);
        assert_eq!(drag.title("drag K (1/m)"), "drag K (1/m) ×1e-3");
        // A peak height of millions: one exponent for all.
        let height = Axis::new(-260_000.0, 5_460_000.0);
        assert_eq!(height.label(5_000_000.0), "5.0");
        assert_eq!(height.label(0.0), "0.0");
        assert_eq!(height.title("y (m)"), "y (m) ×1e6");
        // Ordinary numbers stay as they are.
        let time = Axis::new(0.0, 2048.7);
        assert_eq!((time.label(250.0), time.label(2000.0)), ("250".into(), "2000".into()));
        assert_eq!(time.title("t (s)"), "t (s)");
        let small = Axis::new(0.0, 1.0);
        assert_eq!(small.label(0.25), "0.2");
        assert_eq!(Axis::new(3.0, 3.0).label(3.0), "3");
        assert_eq!(Axis::new(-1e-9, 1e-9).label(-1e-12), "0.0");
        // Only what rounds to zero is shown as zero: 0.05 is (just above) half a step.
        assert_eq!(small.label(0.05), "0.1");
        assert_eq!(small.label(0.04), "0.0");
    }

    #[test]
    fn plot_errors_in_words() {
        use plotters_backend::DrawingErrorKind::{DrawingError, FontError};
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "no space left on device");
        let e = DrawingAreaErrorKind::BackendError(DrawingError(BitMapBackendError::IOError(io)));
        assert_eq!(in_words(&e), "no space left on device");
        let e = DrawingAreaErrorKind::BackendError(DrawingError(BitMapBackendError::InvalidBuffer));
        assert_eq!(in_words(&e), "bad image buffer");
        let font: Box<dyn std::error::Error + Send + Sync> = "missing glyph".into();
        let e = DrawingAreaErrorKind::<BitMapBackendError>::BackendError(FontError(font));
        assert_eq!(in_words(&e), "font: missing glyph");
        let e = DrawingAreaErrorKind::<BitMapBackendError>::LayoutError;
        assert!(!in_words(&e).is_empty());
    }

    #[test]
    fn a_plot_path_is_checked_and_nothing_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new.png");
        check_writable(&new).unwrap();
        assert!(!new.exists(), "the check leaves no empty file");
        let old = dir.path().join("old.png");
        std::fs::write(&old, b"an earlier plot").unwrap();
        check_writable(&old).unwrap();
        assert_eq!(std::fs::read(&old).unwrap(), b"an earlier plot", "kept until replaced");
        let taken = dir.path().join("taken.png");
        std::fs::create_dir(&taken).unwrap();
        let e = check_writable(&taken).unwrap_err();
        assert!(format!("{e:#}").contains("cannot write the plot"), "{e:#}");
    }

    #[test]
    fn a_million_points_reduce_to_a_few_per_column() {
        let mut c = Columns::new(0.0, 1.0, 100);
        for i in 0..1_000_000 {
            let x = i as f64 / 999_999.0;
            c.add(x, (x * 50.0).sin());
        }
        let points = c.points();
        assert!(points.len() <= 400, "{}", points.len());
        assert!(points.windows(2).all(|w| w[0].0 <= w[1].0), "in x order");
        let (low, high) = c.y_range().unwrap();
        assert!(low < -0.999 && high > 0.999, "extremes kept: {low} {high}");
    }
}

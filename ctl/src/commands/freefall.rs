//! `marmotctl run freefall`: submits the job, takes its results chunk by chunk in order, and
//! writes them as text lines and/or reduces them for a plot while they arrive.
//!
//! Memory stays bounded whatever the number of points: the coordinator holds a window of
//! chunks, this process a few more in a channel between the fetching task and the writing
//! thread, and the plot keeps four points per pixel column.

use crate::cli::{FreefallArgs, SweepRange};
use crate::follow::{chunk_bar, Interrupt};
use crate::plot::{self, Columns, Panel};
use anyhow::{bail, Context, Result};
use client::follow::SeriesChunks;
use client::{Client, ClientError, Submit};
use indicatif::ProgressBar;
use proto::api::JobState;
use proto::job::{sweep_drag, Fall, JobSpec, SWEEP_WIDTH};
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::sync::mpsc;

/// Chunks fetched ahead of the writer.
const AHEAD: usize = 4;
/// One chunk of results as it came off the socket.
struct Chunk {
    first_unit: u64,
    /// Units of the whole job (points, or drag values).
    units: u64,
    values: Vec<f64>,
}

/// What the results are, and so how they are written and plotted.
#[derive(Clone, Copy)]
enum Kind {
    /// A height per point.
    Points(Fall),
    /// (ground time, impact speed, max height) per drag value.
    Sweep(SweepRange),
}

impl Kind {
    /// Numbers per unit.
    fn width(self) -> usize {
        match self {
            Kind::Points(_) => 1,
            Kind::Sweep(_) => SWEEP_WIDTH,
        }
    }
}

pub async fn run(client: &Client, args: FreefallArgs, how: Submit, json: bool) -> Result<ExitCode> {
    if args.detach {
        bail!("freefall streams its points to marmotctl as they come; it cannot be detached");
    }
    let fall = Fall { y0: args.y0, v0: args.v0, g: args.g, dt: args.dt, drag: args.drag };
    let (spec, kind) = match args.sweep_drag {
        Some(range) => {
            let SweepRange { from, to, steps } = range;
            (JobSpec::Sweep { fall, from, to, steps }, Kind::Sweep(range))
        }
        None => (JobSpec::Freefall { fall, points: 0 }, Kind::Points(fall)),
    };
    // Sweep rows are few: without --out they go to the terminal (unless JSON does).
    let data_on_stdout = match (&args.out, kind) {
        (Some(path), _) => path.as_os_str() == "-",
        (None, Kind::Sweep(_)) => !json,
        (None, _) => false,
    };
    let out = match (&args.out, kind) {
        (Some(path), _) if path.as_os_str() == "-" => Output::Stdout,
        (Some(path), _) => Output::File(path.clone()),
        (None, Kind::Sweep(_)) if !json => Output::Stdout,
        (None, _) => Output::None,
    };
    let mut interrupt = Interrupt::listen()?;
    // Files are checked before the job runs: a typo must not cost a whole computation.
    let sink = Sink::new(kind, out, args.plot.clone(), args.size)?;
    let job = super::submit::submit(client, &spec, how).await?;
    let id = job.id;
    let (tx, rx) = mpsc::channel::<Chunk>(AHEAD);
    let writer = tokio::task::spawn_blocking(move || sink.consume(rx));
    let bar = (!json && std::io::stderr().is_terminal()).then(|| chunk_bar("{per_sec}"));
    let fetched = tokio::select! {
        fetched = fetch_all(client, id, kind, tx, bar.as_ref()) => fetched,
        signal = interrupt.recv() => {
            let _ = client.cancel(id).await;
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
            eprintln!("marmotctl: cancelled job {id} ({})", signal.name);
            return Ok(ExitCode::from(signal.status));
        }
    };
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    if let Err(e) = fetched {
        let _ = client.cancel(id).await;
        return Err(e);
    }
    writer.await.context("the writer stopped")??;
    let view = crate::follow::ended(client, id).await?;
    let (JobState::Done, Some(result)) = (view.state, view.result) else {
        bail!("job {id} failed: {}", view.error.as_deref().unwrap_or("no reason given"));
    };
    let summary = match json {
        true => serde_json::to_string_pretty(&result)? + "\n",
        false => result.to_string(),
    };
    // The summary keeps out of the way of results written to stdout.
    if data_on_stdout {
        eprint!("{summary}");
    } else {
        print!("{summary}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Takes the job's chunks in order and hands them to the writer.
async fn fetch_all(
    client: &Client,
    id: u64,
    kind: Kind,
    tx: mpsc::Sender<Chunk>,
    bar: Option<&ProgressBar>,
) -> Result<()> {
    let lost = |e: &ClientError, wait, said| crate::follow::lost(bar, id, e, wait, said);
    let mut series = SeriesChunks::new(client, id, lost);
    while let Some((k, taken)) = series.next().await? {
        let (first_unit, chunks, units) = (taken.first_unit, taken.chunks, taken.units);
        if taken.values.len() % kind.width() != 0 {
            bail!("chunk {k} of job {id} came back cut short");
        }
        let values = taken.values;
        if tx.send(Chunk { first_unit, units, values }).await.is_err() {
            // The writer stopped: its error is the one to report.
            return Ok(());
        }
        if let Some(bar) = bar {
            bar.set_length(chunks);
            bar.set_position(u64::from(k) + 1);
        }
    }
    Ok(())
}

enum Output {
    None,
    Stdout,
    File(PathBuf),
}

/// Where the results go: text lines, and the columns of a plot.
struct Sink {
    kind: Kind,
    out: Option<BufWriter<Box<dyn Write + Send>>>,
    out_name: String,
    plot: Option<(PathBuf, (u32, u32))>,
    /// The plot's panels, made when the first chunk tells the x range.
    columns: Vec<Columns>,
}

impl Sink {
    fn new(kind: Kind, out: Output, plot: Option<PathBuf>, size: (u32, u32)) -> Result<Self> {
        let (out, out_name): (Option<Box<dyn Write + Send>>, String) = match out {
            Output::None => (None, String::new()),
            Output::Stdout => (Some(Box::new(std::io::stdout())), "stdout".into()),
            Output::File(path) => {
                let file = File::create(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                (Some(Box::new(file)), path.display().to_string())
            }
        };
        let out = out.map(|w| BufWriter::with_capacity(1 << 20, w));
        if let Some(path) = &plot {
            plot::check_writable(path)?;
        }
        Ok(Sink { kind, out, out_name, plot: plot.map(|p| (p, size)), columns: vec![] })
    }

    /// Writes and reduces every chunk as it arrives, then draws the plot.
    fn consume(mut self, mut rx: mpsc::Receiver<Chunk>) -> Result<()> {
        let mut line = Vec::with_capacity(128);
        let mut numbers = ryu::Buffer::new();
        while let Some(chunk) = rx.blocking_recv() {
            let width = self.kind.width();
            for (n, row) in chunk.values.chunks_exact(width).enumerate() {
                let unit = chunk.first_unit + n as u64;
                let x = match self.kind {
                    Kind::Points(fall) => fall.time(unit),
                    Kind::Sweep(r) => sweep_drag(r.from, r.to, r.steps, unit),
                };
                if let Some(out) = &mut self.out {
                    line.clear();
                    line.extend_from_slice(numbers.format(x).as_bytes());
                    for v in row {
                        line.push(b' ');
                        line.extend_from_slice(numbers.format(*v).as_bytes());
                    }
                    line.push(b'\n');
                    out.write_all(&line)
                        .with_context(|| format!("cannot write {}", self.out_name))?;
                }
                if self.plot.is_some() {
                    if self.columns.is_empty() {
                        self.columns = self.panels_for(chunk.units);
                    }
                    for (columns, y) in self.columns.iter_mut().zip(row) {
                        columns.add(x, *y);
                    }
                }
            }
        }
        if let Some(mut out) = self.out.take() {
            out.flush().with_context(|| format!("cannot write {}", self.out_name))?;
        }
        if let Some((path, size)) = &self.plot {
            let (title, x_label, labels): (String, &str, &[&str]) = match self.kind {
                Kind::Points(fall) if fall.drag > 0.0 => {
                    (format!("freefall, drag {}", fall.drag), "t (s)", &["y (m)"])
                }
                Kind::Points(_) => ("freefall".into(), "t (s)", &["y (m)"]),
                Kind::Sweep(_) => (
                    "freefall by drag coefficient".into(),
                    "drag K (1/m)",
                    &["time to ground (s)", "impact speed (m/s)", "max height (m)"],
                ),
            };
            if self.columns.is_empty() {
                self.columns = self.panels_for(1);
            }
            let panels: Vec<Panel<'_>> = labels
                .iter()
                .zip(&self.columns)
                .map(|(y_label, columns)| Panel { y_label, columns })
                .collect();
            plot::draw_png(path, *size, &title, x_label, &panels)?;
        }
        Ok(())
    }

    /// Empty panels over the x range of a job of `units` units.
    fn panels_for(&self, units: u64) -> Vec<Columns> {
        let Some((_, (width, _))) = self.plot else { return vec![] };
        match self.kind {
            Kind::Points(fall) => {
                vec![Columns::new(0.0, fall.time(units.saturating_sub(1)), width)]
            }
            Kind::Sweep(r) => (0..SWEEP_WIDTH).map(|_| Columns::new(r.from, r.to, width)).collect(),
        }
    }
}

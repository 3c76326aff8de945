//! `marmotctl top`: the dashboard's picture in a terminal, for users on ssh: the workers (with
//! their units per second), the running and recent jobs (progress, rate, ETA or result), and
//! the coordinator's latest events. Redrawn twice a second; `q`, Esc or Ctrl-C quits.
//!
//! `--once` (or a stdout that is not a terminal) prints one picture as plain lines and exits.

use anyhow::Result;
use proto::api::{JobState, JobView, Overview};
use proto::human;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Row, Table};
use ratatui::{Frame, Terminal};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How often the picture is redrawn.
const REFRESH: Duration = Duration::from_millis(500);
/// The width of a picture printed with `--once`.
const ONCE_WIDTH: u16 = 120;
/// Events shown.
const EVENTS: usize = 8;
/// How often `--once` counts busy workers again.
const ONCE_POLL: Duration = Duration::from_millis(250);

pub async fn top(client: &client::Client, once: bool) -> Result<ExitCode> {
    if once || !std::io::stdout().is_terminal() {
        let overview = client.overview().await?;
        let (overview, rates) = measured(client, overview).await?;
        print!("{}", picture(&overview, &rates, ONCE_WIDTH));
        return Ok(ExitCode::SUCCESS);
    }
    let mut terminal = ratatui::init();
    let shown = live(&mut terminal, client).await;
    ratatui::restore();
    shown.map(|()| ExitCode::SUCCESS)
}

async fn live(terminal: &mut ratatui::DefaultTerminal, client: &client::Client) -> Result<()> {
    let mut rates = Rates::default();
    loop {
        let overview = client.overview().await?;
        rates.update(&overview, Instant::now());
        terminal.draw(|frame| draw(frame, &overview, &rates))?;
        // Nothing else runs on this thread meanwhile: waiting for a key here is the pause.
        if event::poll(REFRESH)? {
            if let Event::Key(key) = event::read()? {
                let ctrl_c =
                    key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
                if matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) || ctrl_c {
                    return Ok(());
                }
            }
        }
    }
}

/// Busy workers' rates for one picture: a rate needs two counts, so they are counted again
/// until each busy worker has ended a chunk since, or for [`RATE_WINDOW`] at most.
async fn measured(client: &client::Client, first: Overview) -> Result<(Overview, Rates)> {
    let mut rates = Rates::default();
    let busy: Vec<(String, u64)> = first
        .workers
        .iter()
        .filter(|w| w.slots_busy > 0)
        .map(|w| (w.name.clone(), w.units_done))
        .collect();
    if busy.is_empty() {
        return Ok((first, rates));
    }
    let started = Instant::now();
    rates.update(&first, started);
    loop {
        tokio::time::sleep(ONCE_POLL).await;
        let overview = client.overview().await?;
        let counted = |(name, units): &(String, u64)| {
            overview.workers.iter().find(|w| &w.name == name).is_none_or(|w| w.units_done > *units)
        };
        if busy.iter().all(counted) || started.elapsed() >= RATE_WINDOW {
            rates.update(&overview, Instant::now());
            return Ok((overview, rates));
        }
    }
}

/// How far back a rate looks: chunks end in steps, so a rate between two pictures half a
/// second apart would jump between nothing and a burst.
const RATE_WINDOW: Duration = Duration::from_secs(5);

/// Each worker's units per second over the last [`RATE_WINDOW`], from its counts.
#[derive(Default)]
struct Rates {
    /// Each worker's counts, oldest first, reaching back at most one window.
    counts: HashMap<String, std::collections::VecDeque<(Instant, u64)>>,
    per_second: HashMap<String, f64>,
}

impl Rates {
    fn update(&mut self, overview: &Overview, now: Instant) {
        for w in &overview.workers {
            let counts = self.counts.entry(w.name.clone()).or_default();
            // A restarted coordinator counts from zero again.
            if counts.back().is_some_and(|&(_, units)| w.units_done < units) {
                counts.clear();
            }
            counts.push_back((now, w.units_done));
            while counts.len() > 2 && now.saturating_duration_since(counts[1].0) >= RATE_WINDOW {
                counts.pop_front();
            }
            let (since, units) = counts[0];
            let seconds = now.saturating_duration_since(since).as_secs_f64();
            if seconds > 0.0 {
                let rate = (w.units_done - units) as f64 / seconds;
                self.per_second.insert(w.name.clone(), rate);
            }
        }
        self.counts.retain(|name, _| overview.workers.iter().any(|w| &w.name == name));
        self.per_second.retain(|name, _| self.counts.contains_key(name));
    }
}

/// One picture as plain lines, `width` columns wide.
fn picture(overview: &Overview, rates: &Rates, width: u16) -> String {
    // The title's line, then each box: its rows, its borders (and a table's header).
    let height = 1 + (overview.workers.len() + 3) + (overview.jobs.len() + 3) + (EVENTS + 2);
    let backend = TestBackend::new(width, height.min(u16::MAX as usize) as u16);
    let Ok(mut terminal) = Terminal::new(backend) else { return String::new() };
    let _ = terminal.draw(|frame| draw(frame, overview, rates));
    let buffer = terminal.backend().buffer();
    let mut text = String::new();
    for y in 0..buffer.area.height {
        let row: String = (0..buffer.area.width).map(|x| buffer[(x, y)].symbol()).collect();
        text.push_str(row.trim_end());
        text.push('\n');
    }
    text
}

fn draw(frame: &mut Frame, overview: &Overview, rates: &Rates) {
    let s = &overview.status;
    let [head, workers, jobs, events] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(overview.workers.len() as u16 + 3),
        Constraint::Length(overview.jobs.len() as u16 + 3),
        Constraint::Min(3),
    ])
    .areas(frame.area());
    let title = format!(
        "marmot {} on {}  up {}  {}  slots {}/{} busy  {} queued  {} running",
        s.version,
        s.listen,
        humantime::format_duration(Duration::from_secs(s.uptime_seconds as u64)),
        human::count(s.workers as u64, "worker", "workers"),
        s.slots_busy,
        s.slots,
        human::count(s.chunks_queued, "chunk", "chunks"),
        human::count(s.jobs_running as u64, "job", "jobs"),
    );
    frame.render_widget(
        Paragraph::new(title).style(Style::new().add_modifier(Modifier::BOLD)),
        head,
    );
    frame.render_widget(workers_table(overview, rates), workers);
    frame.render_widget(jobs_table(&overview.jobs), jobs);
    let lines: Vec<Line> = overview
        .events
        .iter()
        .rev()
        .take(events.height.saturating_sub(2) as usize)
        .rev()
        .map(|e| {
            let time = proto::human::rfc3339_millis(e.line.unix_ms);
            Line::from(format!(
                "{} {:<5} {}",
                &time[11..19],
                e.line.level.to_string(),
                e.line.message
            ))
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(" events ")), events);
}

fn header(cells: &[&'static str]) -> Row<'static> {
    Row::new(cells.to_vec()).style(Style::new().add_modifier(Modifier::BOLD))
}

fn workers_table(overview: &Overview, rates: &Rates) -> Table<'static> {
    let rows = overview.workers.iter().map(|w| {
        let rate = rates.per_second.get(&w.name).map_or("-".into(), |r| human::rate(*r, "units"));
        let style = if w.quarantined { Style::new().fg(Color::Red) } else { Style::new() };
        Row::new(vec![
            w.name.clone(),
            w.address.clone(),
            format!("{}/{}", w.slots_busy, w.slots),
            rate,
            format!("{:.1} ms", w.rtt_ms),
            w.score.map_or("-".into(), |s| format!("{s:.2}")),
            w.version.clone(),
        ])
        .style(style)
    });
    let widths = [
        Constraint::Length(16),
        Constraint::Length(22),
        Constraint::Length(7),
        Constraint::Length(18),
        Constraint::Length(9),
        Constraint::Length(6),
        Constraint::Min(8),
    ];
    Table::new(rows, widths)
        .header(header(&["WORKER", "ADDRESS", "BUSY", "RATE", "RTT", "SCORE", "VERSION"]))
        .block(Block::bordered().title(" workers "))
}

/// A job's progress as a bar of `width` cells and a percentage.
fn bar(job: &JobView, width: usize) -> String {
    let share =
        if job.units_total == 0 { 0.0 } else { job.units_done as f64 / job.units_total as f64 };
    let full = ((share * width as f64).round() as usize).min(width);
    format!("{}{} {:>3.0}%", "█".repeat(full), "·".repeat(width - full), share * 100.0)
}

fn jobs_table(jobs: &[JobView]) -> Table<'static> {
    let rows = jobs.iter().map(|j| {
        let rate = j.units_done as f64 / j.elapsed_seconds.max(1e-9);
        let tail = match j.state {
            JobState::Running if rate > 0.0 => {
                let left = j.units_total.saturating_sub(j.units_done) as f64 / rate;
                format!(
                    "ETA {}",
                    humantime::format_duration(Duration::from_secs(left.ceil() as u64))
                )
            }
            JobState::Running => "waiting".into(),
            JobState::Done => j.summary.as_deref().map_or(String::new(), first_line),
            _ => j.error.clone().unwrap_or_default(),
        };
        Row::new(vec![
            j.id.to_string(),
            j.task.clone(),
            j.state.to_string(),
            bar(j, 20),
            human::rate(rate, "units"),
            tail,
        ])
    });
    let widths = [
        Constraint::Length(6),
        Constraint::Length(9),
        Constraint::Length(10),
        Constraint::Length(26),
        Constraint::Length(18),
        Constraint::Min(10),
    ];
    Table::new(rows, widths)
        .header(header(&["JOB", "TASK", "STATE", "PROGRESS", "RATE", "ETA / RESULT"]))
        .block(Block::bordered().title(" jobs "))
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::api::{KeptLine, WorkerView};
    use proto::logs::LogLine;

    fn overview() -> Overview {
        serde_json::from_value(serde_json::json!({
            "status": {"version": "0.1.0", "listen": "127.0.0.1:7070", "uptime_seconds": 65.0,
                "workers": 1, "slots": 2, "slots_busy": 1, "chunks_queued": 3, "jobs_running": 1},
            "workers": [{"name": "attic", "address": "10.0.0.2:5000", "slots": 2, "slots_busy": 1,
                "version": "0.1.0", "binary_sha256": "", "arch": "x86_64", "os": "linux",
                "connected_since": 0, "last_seen_ms": 0, "rtt_ms": 1.25, "score": 0.5,
                "units_done": 1000}],
            "jobs": [{"id": 7, "task": "pi", "spec": {"pi": {"samples": 100, "seed": 0}},
                "state": "running", "chunks_done": 1, "chunks_total": 4, "units_done": 50,
                "units_total": 100, "elapsed_seconds": 5.0, "chunks_rerun": 0,
                "result": null, "error": null}],
            "counters": {"chunks_started": 0, "chunks_retried": 0, "chunks_done": 0,
                "chunks_failed": 0, "chunks_stopped": 0, "jobs_submitted": 0, "jobs_done": 0,
                "jobs_failed": 0, "jobs_cancelled": 0, "quarantines": 0, "workers_joined": 0,
                "workers_lost": 0, "bytes_sent": 0, "bytes_received": 0, "updates": {},
                "log_lines_received": 0, "log_lines_refused": 0},
            "events": [{"seq": 1, "worker": null, "unix_ms": 1_764_586_388_000_u64, "level": "info",
                "target": "t", "message": "worker 'attic' connected"}]
        }))
        .unwrap()
    }

    #[test]
    fn a_picture_shows_workers_with_rates_jobs_with_progress_and_events() {
        let overview = overview();
        let mut rates = Rates::default();
        let t0 = Instant::now();
        rates.update(&overview, t0);
        assert_eq!(rates.per_second.get("attic"), None, "one count is no rate yet");
        let mut later = overview.clone();
        later.workers[0].units_done = 3000;
        rates.update(&later, t0 + Duration::from_secs(2));
        let text = picture(&later, &rates, ONCE_WIDTH);
        assert!(
            text.contains("1 worker  slots 1/2 busy  3 chunks queued  1 job running"),
            "{text}"
        );
        assert!(text.contains("attic") && text.contains("10.0.0.2:5000"), "{text}");
        assert!(text.contains("1.00 k units/s"), "(3000 - 1000) / 2 s: {text}");
        assert!(text.contains("1.2 ms") || text.contains("1.3 ms"), "{text}");
        assert!(text.contains("██████████··········  50%"), "{text}");
        assert!(text.contains("10.0 units/s") && text.contains("ETA 5s"), "{text}");
        assert!(text.contains("10:53:08 INFO  worker 'attic' connected"), "{text}");
    }

    #[test]
    fn a_rate_looks_back_a_window_and_starts_again_after_a_restart() {
        let mut overview = overview();
        let mut rates = Rates::default();
        let t0 = Instant::now();
        for (s, units) in [(0, 0), (1, 0), (2, 5000), (3, 5000), (7, 9000)] {
            overview.workers[0].units_done = units;
            rates.update(&overview, t0 + Duration::from_secs(s));
        }
        // At 7 s the window reaches back to the count at 2 s: 4000 units in 5 s.
        assert_eq!(rates.per_second["attic"], 800.0);
        overview.workers[0].units_done = 100;
        rates.update(&overview, t0 + Duration::from_secs(8));
        assert_eq!(rates.counts["attic"].len(), 1, "counts from zero again");
    }

    #[test]
    fn a_big_cluster_fits_whole_in_one_picture() {
        let mut overview = overview();
        let worker = overview.workers[0].clone();
        overview.workers =
            (0..20).map(|i| WorkerView { name: format!("node{i:02}"), ..worker.clone() }).collect();
        let job = overview.jobs[0].clone();
        overview.jobs = (1..=12).map(|id| JobView { id, ..job.clone() }).collect();
        overview.jobs[0].state = JobState::Done;
        overview.jobs[0].summary = Some("pi ≈ 3.1415\nthe second line".into());
        let event = overview.events[0].clone();
        overview.events = (0..EVENTS as u64)
            .map(|seq| {
                let line = LogLine { message: format!("event {seq}"), ..event.line.clone() };
                KeptLine { seq, line, ..event.clone() }
            })
            .collect();
        let text = picture(&overview, &Rates::default(), ONCE_WIDTH);
        for i in 0..20 {
            assert!(text.contains(&format!("node{i:02}")), "node{i:02}: {text}");
        }
        for id in 1..=12 {
            assert!(text.lines().any(|l| l.starts_with(&format!("│{id} "))), "job {id}: {text}");
        }
        for seq in 0..EVENTS {
            assert!(text.contains(&format!("event {seq}")), "event {seq}: {text}");
        }
        assert!(text.contains("pi ≈ 3.1415") && !text.contains("the second line"), "{text}");
    }

    #[test]
    fn a_worker_gone_loses_its_rate() {
        let overview = overview();
        let mut rates = Rates::default();
        rates.update(&overview, Instant::now());
        let gone = Overview { workers: vec![], ..overview };
        rates.update(&gone, Instant::now());
        assert!(rates.counts.is_empty() && rates.per_second.is_empty());
    }
}

//! Where `marmotctl parallel` keeps a job's output instead of printing it: GNU parallel's
//! `--results` files or table (named and written by [`crate::parallel::results`]) and
//! `--files`' temporary files, opened as each unit's output arrives and closed when it ends.

use crate::parallel::results::{Kept, Row, Table};
use proto::command::UnitReport;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::PathBuf;

/// What is kept, for every unit of the run.
pub struct Saving {
    /// Per unit (by number from 0), where `--results` keeps its output; `None`: `--files`
    /// alone, each unit's stdout in a new file under `tmpdir`, its stderr printed.
    pub kept: Option<Vec<Kept>>,
    /// `--results NAME.csv` (`.tsv`, `.json`): a row per unit in one table instead.
    pub table: Option<Rows>,
    /// `--files`: the stdout file's name is printed in place of the output.
    pub print_names: bool,
    pub tmpdir: PathBuf,
}

/// A `--results` table being written.
pub struct Rows {
    pub table: Table,
    pub path: PathBuf,
    pub file: File,
    /// Per unit, its arguments.
    pub values: Vec<Vec<String>>,
}

/// The most output of one unit a table's row holds (it is read into memory to be written).
const MOST_IN_ROW: u64 = 256 << 20;

/// One unit's files, open while its output arrives.
pub struct Open {
    pub stdout: File,
    /// `None`: stderr is printed.
    pub stderr: Option<File>,
    /// The stdout file's name (`--files` prints it).
    pub name: PathBuf,
}

impl Saving {
    /// Opens unit `unit`'s files (a try made again truncates those of the one before), and
    /// writes its number, from 1, into its `seq` file.
    pub fn open(&self, unit: u64) -> std::io::Result<Open> {
        if let Some(rows) = &self.table {
            // Held aside until the unit's row is written.
            let (stdout, stderr) = (tempfile::tempfile()?, tempfile::tempfile()?);
            return Ok(Open { stdout, stderr: Some(stderr), name: rows.path.clone() });
        }
        let Some(kept) = &self.kept else {
            let file = tempfile::Builder::new()
                .prefix("par")
                .suffix(".par")
                .rand_bytes(5)
                .tempfile_in(&self.tmpdir)
                .map_err(|e| in_file(&self.tmpdir, e))?;
            let (stdout, name) = file.keep().map_err(|e| e.error)?;
            return Ok(Open { stdout, stderr: None, name });
        };
        let kept = kept.get(unit as usize).ok_or_else(|| {
            std::io::Error::other(format!("unit {} is not one of this run's", unit + 1))
        })?;
        if let Some(dir) = kept.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| in_file(dir, e))?;
        }
        let create = |path: PathBuf| File::create(&path).map_err(|e| in_file(&path, e));
        create(kept.seq())?.write_all((unit + 1).to_string().as_bytes())?;
        let name = kept.stdout();
        Ok(Open { stdout: create(name.clone())?, stderr: Some(create(kept.stderr())?), name })
    }

    /// Closes a unit's files; into a table, writes its row. Returns the name `--files`
    /// prints, if it prints one.
    pub fn close(
        &mut self,
        open: Open,
        report: &UnitReport,
        command: &str,
    ) -> std::io::Result<Option<PathBuf>> {
        let Some(rows) = &mut self.table else {
            return Ok(self.print_names.then_some(open.name));
        };
        let read = |mut file: File| -> std::io::Result<Vec<u8>> {
            file.rewind()?;
            let mut bytes = vec![];
            (&mut file).take(MOST_IN_ROW + 1).read_to_end(&mut bytes)?;
            if bytes.len() as u64 > MOST_IN_ROW {
                return Err(std::io::Error::other(format!(
                    "unit {} printed more than {} MiB, more than a row of {} holds: give a \
                     dir to --results",
                    report.unit + 1,
                    MOST_IN_ROW >> 20,
                    rows.path.display()
                )));
            }
            Ok(bytes)
        };
        let stdout = read(open.stdout)?;
        let stderr = open.stderr.map(read).transpose()?.unwrap_or_default();
        let (exit, signal) = report.ending.exit_and_signal();
        let no_values = vec![];
        let values = rows.values.get(report.unit as usize).unwrap_or(&no_values);
        let row = Row {
            seq: report.unit + 1,
            host: &report.worker,
            start_ms: report.started_ms,
            runtime_ms: report.duration_ms,
            receive: report.stdout,
            exit: exit.into(),
            signal: signal.into(),
            command,
            values,
            stdout: &stdout,
            stderr: &stderr,
        };
        rows.file.write_all(&rows.table.row(&row))?;
        rows.file.flush()?;
        Ok(self.print_names.then(|| rows.path.clone()))
    }
}

/// An error on `path`, saying which.
fn in_file(path: &std::path::Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
}

//! Where `marmotctl parallel` keeps a job's output instead of printing it: GNU parallel's
//! `--results` files (named by [`crate::parallel::results`]) and `--files`' temporary files,
//! opened as each unit's output arrives and closed when it ends.

use crate::parallel::results::Kept;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

/// What is kept, for every unit of the run.
pub struct Saving {
    /// Per unit (by number from 0), where `--results` keeps its output; `None`: `--files`
    /// alone, each unit's stdout in a new file under `tmpdir`, its stderr printed.
    pub kept: Option<Vec<Kept>>,
    /// `--files`: the stdout file's name is printed in place of the output.
    pub print_names: bool,
    pub tmpdir: PathBuf,
}

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
}

/// An error on `path`, saying which.
fn in_file(path: &std::path::Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
}

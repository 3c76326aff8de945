//! A unit's results: what it wrote under `$MARMOT_OUT`, sent back as one tar, packed while it
//! is sent rather than into a file first (a copy on disk of every result byte cost the worker
//! as much as sending them).
//!
//! The unit's report announces the tar's size before the bytes follow, so packing is done in
//! two passes over one listing: [`Listing::size`] counts what packing will write (headers and
//! padding, the files' contents not read), and [`Listing::pack`] writes it. Both build the same
//! headers from the same metadata, so the count is exact; a file that shrank in between is
//! padded with zeros and one that grew is cut, so the tar is always the size announced.

use std::fs::Metadata;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// The most entries (files, dirs, links) a unit's results may hold: each is kept in memory
/// between the two passes.
pub const MAX_ENTRIES: usize = 100_000;

/// What is under a unit's `$MARMOT_OUT`, in the order it is packed.
#[derive(Debug)]
pub struct Listing {
    entries: Vec<Entry>,
    /// The tar's size in bytes.
    pub size: u64,
}

#[derive(Debug)]
struct Entry {
    /// Where it is.
    path: PathBuf,
    /// Its name in the tar: its path under `$MARMOT_OUT`.
    name: PathBuf,
    meta: Metadata,
    /// Where it points, if it is a symbolic link.
    target: Option<PathBuf>,
}

impl Listing {
    /// Lists `out`, or `None` when the unit wrote nothing there. Symbolic links are packed as
    /// links, never followed; sockets, pipes and devices are left out.
    pub fn of(out: &Path) -> io::Result<Option<Listing>> {
        Listing::at_most(out, MAX_ENTRIES)
    }

    fn at_most(out: &Path, max_entries: usize) -> io::Result<Option<Listing>> {
        let mut entries = vec![];
        let mut dirs = vec![(out.to_path_buf(), PathBuf::new())];
        while let Some((dir, name)) = dirs.pop() {
            let mut items = std::fs::read_dir(&dir)?.collect::<io::Result<Vec<_>>>()?;
            items.sort_by_key(|item| item.file_name());
            // Popped last first: pushed in reverse, a dir's subdirs come in name order.
            let mut subdirs = vec![];
            for item in items {
                let (path, name) = (item.path(), name.join(item.file_name()));
                let meta = std::fs::symlink_metadata(&path)?;
                let kind = meta.file_type();
                let target = match kind.is_symlink() {
                    true => Some(std::fs::read_link(&path)?),
                    false => None,
                };
                if !(kind.is_file() || kind.is_dir() || kind.is_symlink()) {
                    continue;
                }
                if kind.is_dir() {
                    subdirs.push((path.clone(), name.clone()));
                }
                entries.push(Entry { path, name, meta, target });
                if entries.len() > max_entries {
                    return Err(io::Error::other(format!(
                        "more than {max_entries} files and dirs under $MARMOT_OUT: pack them \
                         into fewer files (tar, zip) in the command"
                    )));
                }
            }
            dirs.extend(subdirs.into_iter().rev());
        }
        if entries.is_empty() {
            return Ok(None);
        }
        let mut listing = Listing { entries, size: 0 };
        let (headers, contents) = listing.write(Counter(0), false)?;
        listing.size = headers.0 + contents;
        Ok(Some(listing))
    }

    /// Writes the tar, exactly [`Listing::size`] bytes.
    pub fn pack(&self, sink: impl Write) -> io::Result<()> {
        self.write(sink, true).map(drop)
    }

    /// The tar, with the files' contents read (`contents`), or without them: then only the
    /// headers go to `sink`, and the bytes the contents would take (padding included) are
    /// returned beside it.
    fn write<W: Write>(&self, sink: W, contents: bool) -> io::Result<(W, u64)> {
        let mut left_out = 0;
        let mut tar = tar::Builder::new(sink);
        for entry in &self.entries {
            let mut header = tar::Header::new_gnu();
            header.set_metadata_in_mode(&entry.meta, tar::HeaderMode::Complete);
            if let Some(target) = &entry.target {
                tar.append_link(&mut header, &entry.name, target)?;
            } else if entry.meta.is_dir() {
                tar.append_data(&mut header, &entry.name, io::empty())?;
            } else if contents {
                let size = entry.meta.len();
                let file = std::fs::File::open(&entry.path)?.take(size);
                tar.append_data(&mut header, &entry.name, Exactly::new(file, size))?;
            } else {
                // The header; no data is written, so no padding either.
                tar.append_data(&mut header, &entry.name, io::empty())?;
                left_out += entry.meta.len().div_ceil(512) * 512;
            }
        }
        let mut sink = tar.into_inner()?;
        sink.flush()?;
        Ok((sink, left_out))
    }
}

/// Counts the bytes written to it.
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `size` bytes of `inner`: cut after them, zeros after its end.
struct Exactly<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Exactly<R> {
    fn new(inner: R, size: u64) -> Self {
        Exactly { inner, left: size }
    }
}

impl<R: Read> Read for Exactly<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let got = match self.inner.read(&mut buf[..want])? {
            0 => {
                buf[..want].fill(0);
                want
            }
            n => n,
        };
        self.left -= got as u64;
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn packed(listing: &Listing) -> Vec<u8> {
        let mut bytes = vec![];
        listing.pack(&mut bytes).unwrap();
        bytes
    }

    #[test]
    fn nothing_written_is_no_results() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Listing::of(dir.path()).unwrap().is_none());
    }

    #[test]
    fn the_size_counted_is_the_size_packed_and_the_tar_holds_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let long = "n".repeat(150);
        std::fs::create_dir_all(out.join("sub/deeper")).unwrap();
        std::fs::write(out.join("a.txt"), "alpha\n").unwrap();
        std::fs::write(out.join("sub/deeper").join(&long), vec![7u8; 1000]).unwrap();
        std::fs::write(out.join("sub/empty"), "").unwrap();
        symlink("../a.txt", out.join("sub/link")).unwrap();
        symlink("t".repeat(120), out.join("long-link")).unwrap();
        let listing = Listing::of(&out).unwrap().unwrap();
        let bytes = packed(&listing);
        assert_eq!(bytes.len() as u64, listing.size);
        assert_eq!(bytes.len() % 512, 0);

        let into = dir.path().join("into");
        tar::Archive::new(&bytes[..]).unpack(&into).unwrap();
        assert_eq!(std::fs::read_to_string(into.join("a.txt")).unwrap(), "alpha\n");
        assert_eq!(std::fs::read(into.join("sub/deeper").join(&long)).unwrap(), [7u8; 1000]);
        assert_eq!(std::fs::read(into.join("sub/empty")).unwrap(), b"");
        assert_eq!(std::fs::read_link(into.join("sub/link")).unwrap(), Path::new("../a.txt"));
        assert_eq!(
            std::fs::read_link(into.join("long-link")).unwrap(),
            Path::new(&"t".repeat(120))
        );
        let names: Vec<String> = tar::Archive::new(&bytes[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        let expected = ["a.txt", "long-link", "sub", "sub/deeper"];
        assert_eq!(names[..4], expected, "in name order, a dir before what it holds");
        assert_eq!(names.len(), 7);
    }

    #[test]
    fn a_file_that_changed_after_listing_keeps_the_size_announced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("grows"), "1234").unwrap();
        std::fs::write(dir.path().join("shrinks"), "12345678").unwrap();
        let listing = Listing::of(dir.path()).unwrap().unwrap();
        std::fs::write(dir.path().join("grows"), "123456789").unwrap();
        std::fs::write(dir.path().join("shrinks"), "12").unwrap();
        let bytes = packed(&listing);
        assert_eq!(bytes.len() as u64, listing.size);
        let mut tar = tar::Archive::new(&bytes[..]);
        let contents: Vec<Vec<u8>> = tar
            .entries()
            .unwrap()
            .map(|e| {
                let mut bytes = vec![];
                e.unwrap().read_to_end(&mut bytes).unwrap();
                bytes
            })
            .collect();
        assert_eq!(contents, [b"1234".to_vec(), b"12\0\0\0\0\0\0".to_vec()]);
    }

    #[test]
    fn a_tree_too_large_to_list_is_refused_in_words() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        for n in 0..3 {
            std::fs::File::create(dir.path().join("d").join(n.to_string())).unwrap();
        }
        assert_eq!(Listing::at_most(dir.path(), 4).unwrap().unwrap().entries.len(), 4);
        let e = Listing::at_most(dir.path(), 3).unwrap_err().to_string();
        assert!(e.starts_with("more than 3 files and dirs under $MARMOT_OUT"), "{e}");
    }

    #[test]
    fn exactly_cuts_and_pads() {
        let mut bytes = vec![];
        Exactly::new(&b"abcdef"[..], 4).read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes, b"abcd");
        bytes.clear();
        Exactly::new(&b"ab"[..], 5).read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes, b"ab\0\0\0");
    }
}

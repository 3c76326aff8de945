//! What a binary file is: its SHA-256, the CPU architecture in its ELF header, and the version
//! in its stamp. Read in blocks, so any size costs one block of memory.

use super::version;
use anyhow::{bail, Context, Result};
use proto::api::BinaryInfo;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// Bytes read at a time.
const BLOCK: usize = 1 << 20;
/// Bytes kept from the previous block, so a version stamp cut by a block edge is still found.
const OVERLAP: usize = 128;

/// The architecture an ELF header is for, named as Rust names it (`std::env::consts::ARCH`).
///
/// Only the first 20 bytes are read: the magic, the class (32/64-bit), the byte order and
/// `e_machine`, at offsets fixed by the ELF specification. A full ELF parser would add a
/// dependency to read one number.
pub fn elf_arch(header: &[u8]) -> Result<&'static str, String> {
    if header.len() < 20 || &header[..4] != b"\x7fELF" {
        return Err("not an ELF executable (a Linux binary)".into());
    }
    let machine = match header[5] {
        1 => u16::from_le_bytes([header[18], header[19]]),
        2 => u16::from_be_bytes([header[18], header[19]]),
        _ => return Err("an ELF file of unknown byte order".into()),
    };
    let arch = match (header[4], machine) {
        (2, 62) => "x86_64",
        (2, 183) => "aarch64",
        (2, 243) => "riscv64",
        (1, 3) => "x86",
        (1, 40) => "arm",
        (class, machine) => {
            return Err(format!(
                "an ELF file for machine {machine} (class {class}), not one marmot knows"
            ));
        }
    };
    Ok(arch)
}

/// Calls `each` on a file's bytes, a block at a time.
fn for_each_block(path: &Path, mut each: impl FnMut(&[u8])) -> Result<()> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut block = vec![0u8; BLOCK];
    loop {
        let n = file.read(&mut block).with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            return Ok(());
        }
        each(&block[..n]);
    }
}

/// SHA-256 of a file, lowercase hex, read in blocks.
pub fn file_sha256(path: &Path) -> Result<String> {
    let mut hasher = Sha256::new();
    for_each_block(path, |bytes| hasher.update(bytes))?;
    Ok(hex::encode(hasher.finalize()))
}

/// SHA-256 of this process's own executable, hashed once per process (the coordinator, the
/// workers of `marmotd local` and the update checks all ask for it).
pub async fn own_sha256() -> Result<String> {
    static OWN: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    let sha = OWN
        .get_or_try_init(|| async {
            let exe = std::env::current_exe().context("cannot find this program's executable")?;
            tokio::task::spawn_blocking(move || file_sha256(&exe))
                .await
                .context("hashing task panicked")?
        })
        .await?;
    Ok(sha.clone())
}

/// Reads a whole binary once: SHA-256, size, architecture and version.
pub fn inspect(path: &Path) -> Result<BinaryInfo> {
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut header = Vec::new();
    let (mut found, mut program) = (None, None);
    let mut window: Vec<u8> = Vec::with_capacity(BLOCK + OVERLAP);
    for_each_block(path, |bytes| {
        hasher.update(bytes);
        size += bytes.len() as u64;
        if header.len() < 20 {
            header.extend_from_slice(&bytes[..bytes.len().min(20 - header.len())]);
        }
        if found.is_none() || program.is_none() {
            let keep = window.len().saturating_sub(OVERLAP);
            window.drain(..keep);
            window.extend_from_slice(bytes);
            if found.is_none() {
                found = version::find_in(&window);
            }
            if program.is_none() {
                program = proto::version::find_program(&window).map(String::from);
            }
        }
    })?;
    let arch = elf_arch(&header).map_err(|e| anyhow::anyhow!("the file is {e}"))?;
    let Some(version) = found else {
        bail!("the file has no marmot version stamp: it is not a marmotd binary");
    };
    // Releases before program stamps have none: only a stamp naming another program refuses.
    if let Some(other) = program.filter(|p| p != "marmotd") {
        bail!("the file is {other}, not marmotd: give the path of the marmotd binary");
    }
    Ok(BinaryInfo { sha256: hex::encode(hasher.finalize()), size, version, arch: arch.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_binary_is_inspected_as_what_it_is() {
        let exe = std::env::current_exe().unwrap();
        let info = inspect(&exe).unwrap();
        assert_eq!(info.arch, std::env::consts::ARCH);
        assert_eq!(info.version, version::current());
        assert_eq!(info.size, std::fs::metadata(&exe).unwrap().len());
        assert_eq!(info.sha256, file_sha256(&exe).unwrap());
    }

    #[test]
    fn elf_headers_of_other_machines() {
        let mut aarch64 = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0".to_vec();
        aarch64.extend_from_slice(&183u16.to_le_bytes());
        assert_eq!(elf_arch(&aarch64), Ok("aarch64"));
        assert!(elf_arch(b"#!/bin/sh\necho hi\n-----").unwrap_err().contains("not an ELF"));
        assert!(elf_arch(b"\x7fELF").is_err(), "too short");
    }
}

//! Where an import reads from: a directory of CSV files, a ZIP of them, or one XLSX workbook
//! with a sheet per file. Files are opened one at a time and read as a stream (a directory),
//! or one entry at a time (a ZIP, with the unpacked size checked first against zip bombs), or
//! one sheet at a time (a workbook, same limits).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, sync_channel};

use sha2::{Digest, Sha256};

use super::rows::Input;

/// At most this many bytes of one unpacked ZIP entry (ASVS 5.2.3: zip bombs).
pub const MAX_ENTRY_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// At most this many entries in a ZIP.
pub const MAX_ENTRIES: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("не удалось прочитать {path}: {problem}")]
    Io { path: String, problem: String },
    #[error("{path} — не ZIP-архив и не каталог: {problem}")]
    NotZip { path: String, problem: String },
    #[error("{path} — не книга Excel (XLSX): {problem}; сохраните файл как «Книга Excel (.xlsx)»")]
    NotXlsx { path: String, problem: String },
    #[error(
        "архив {path}: {problem} (ограничения: не больше {MAX_ENTRIES} файлов и 2 ГиБ на файл)"
    )]
    TooBig { path: String, problem: String },
    #[error(
        "не удалось записать временный файл проверки: {0}; освободите место в каталоге временных файлов (TMPDIR, иначе /var/tmp) и повторите загрузку"
    )]
    Scratch(#[from] super::keys::ScratchError),
}

#[derive(Clone, Debug)]
pub enum Source {
    Dir(PathBuf),
    Zip(PathBuf),
    /// One workbook, a sheet per file of the set.
    Xlsx(PathBuf),
}

impl Source {
    /// A directory as is; a file named `*.xlsx` as a workbook; any other file as a ZIP.
    pub fn at(path: &Path) -> Result<Self, SourceError> {
        let meta = std::fs::metadata(path).map_err(|e| SourceError::Io {
            path: path.display().to_string(),
            problem: e.to_string(),
        })?;
        Ok(if meta.is_dir() {
            Self::Dir(path.to_path_buf())
        } else if super::xlsx::is_xlsx(path) {
            Self::Xlsx(path.to_path_buf())
        } else {
            Self::Zip(path.to_path_buf())
        })
    }

    pub fn path(&self) -> &Path {
        match self {
            Self::Dir(p) | Self::Zip(p) | Self::Xlsx(p) => p,
        }
    }

    /// The name shown to users: the last path component only.
    pub fn display_name(&self) -> String {
        self.path().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }

    fn io(&self, e: impl std::fmt::Display) -> SourceError {
        SourceError::Io { path: self.path().display().to_string(), problem: e.to_string() }
    }

    /// Opens `name` (e.g. `persons.csv`, or the sheet `persons` of a workbook); `None` when
    /// the set has no such file.
    pub fn open(&self, name: &str) -> Result<Option<Input>, SourceError> {
        self.open_in(name, &mut None)
    }

    /// [`Source::open`] for a reader of several files: a workbook is opened on the first call
    /// and kept in `book` for the next ones.
    pub fn open_in(
        &self,
        name: &str,
        book: &mut Option<super::xlsx::Book>,
    ) -> Result<Option<Input>, SourceError> {
        Ok(match self {
            Self::Xlsx(path) => {
                let book = match book {
                    Some(b) => b,
                    None => book.insert(super::xlsx::Book::open(path)?),
                };
                book.sheet(&self.display_name(), name)?.map(Input::Sheet)
            }
            _ => self.open_bytes(name)?.map(Input::Csv),
        })
    }

    fn open_bytes(&self, name: &str) -> Result<Option<Box<dyn Read + Send>>, SourceError> {
        match self {
            Self::Xlsx(_) => Ok(None),
            Self::Dir(dir) => {
                let p = dir.join(name);
                if !p.is_file() {
                    return Ok(None);
                }
                let f = File::open(&p).map_err(|e| self.io(e))?;
                Ok(Some(Box::new(BufReader::new(f))))
            }
            Self::Zip(path) => {
                let f = File::open(path).map_err(|e| self.io(e))?;
                let mut zip = zip::ZipArchive::new(BufReader::new(f)).map_err(|e| {
                    SourceError::NotZip { path: path.display().to_string(), problem: e.to_string() }
                })?;
                if zip.len() > MAX_ENTRIES {
                    return Err(SourceError::TooBig {
                        path: path.display().to_string(),
                        problem: format!("{} файлов", zip.len()),
                    });
                }
                // Entries may sit in one top-level folder: match on the base name.
                let found = (0..zip.len()).find(|&i| {
                    zip.name_for_index(i).is_some_and(|n| {
                        let n = n.as_ref().map(|c| c.to_string()).unwrap_or_default();
                        n == name || n.rsplit('/').next() == Some(name)
                    })
                });
                let Some(i) = found else { return Ok(None) };
                let size = zip.by_index(i).map_err(|e| self.io(e))?.size();
                if size > MAX_ENTRY_BYTES {
                    return Err(SourceError::TooBig {
                        path: path.display().to_string(),
                        problem: format!("{name}: {size} байт"),
                    });
                }
                Ok(Some(Box::new(ZipEntry::stream(zip, i, name))))
            }
        }
    }

    /// SHA-256 of the source: of the file, or of the directory's files in name order
    /// (each as name, NUL, content hash) — the value `purge-import` records.
    pub fn sha256(&self) -> Result<String, SourceError> {
        match self {
            Self::Zip(p) | Self::Xlsx(p) => file_sha256(p).map(|(h, _)| h).map_err(|e| self.io(e)),
            Self::Dir(dir) => {
                let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
                    .map_err(|e| self.io(e))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_file())
                    .collect();
                names.sort();
                let mut all = Sha256::new();
                for p in names {
                    let (h, _) = file_sha256(&p).map_err(|e| self.io(e))?;
                    all.update(
                        p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                    );
                    all.update([0]);
                    all.update(h.as_bytes());
                }
                Ok(hex::encode(all.finalize()))
            }
        }
    }
}

/// A ZIP entry read as it is inflated. The entry borrows its archive, so a thread owns both
/// and hands chunks over a channel of bounded depth: memory stays at a few chunks, whatever
/// the size of the entry, and nothing is unpacked to disk.
struct ZipEntry {
    chunks: Receiver<std::io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
}

/// Chunks in flight between the inflating thread and the reader.
const ZIP_CHUNKS_IN_FLIGHT: usize = 4;
const ZIP_CHUNK_BYTES: usize = 64 * 1024;

impl ZipEntry {
    fn stream(mut zip: zip::ZipArchive<BufReader<File>>, index: usize, name: &str) -> Self {
        let (tx, chunks) = sync_channel(ZIP_CHUNKS_IN_FLIGHT);
        let name = name.to_owned();
        std::thread::spawn(move || {
            let mut entry = match zip.by_index(index) {
                Ok(entry) => entry,
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e)));
                    return;
                }
            };
            let mut total = 0u64;
            loop {
                let mut chunk = vec![0u8; ZIP_CHUNK_BYTES];
                let sent = match entry.read(&mut chunk) {
                    Ok(0) => return,
                    Ok(n) => {
                        total += n as u64;
                        // The header's size was checked; a lying header cannot make us read on.
                        if total > MAX_ENTRY_BYTES {
                            tx.send(Err(std::io::Error::other(format!(
                                "{name} в архиве больше заявленного размера (не больше 2 ГиБ на файл)"
                            ))))
                        } else {
                            chunk.truncate(n);
                            tx.send(Ok(chunk))
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => tx.send(Err(e)),
                };
                // The reader is gone (the import stopped) or was told of an error: stop.
                if sent.is_err() || total > MAX_ENTRY_BYTES {
                    return;
                }
            }
        });
        Self { chunks, chunk: Vec::new(), at: 0 }
    }
}

impl Read for ZipEntry {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.chunks.recv() {
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                Ok(Err(e)) => return Err(e),
                // The thread ended after the last chunk.
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len() - self.at);
        out[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// SHA-256 (hex) and size of one file, read as a stream.
pub fn file_sha256(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = BufReader::new(File::open(path)?);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        h.update(&buf[..n]);
    }
    Ok((hex::encode(h.finalize()), size))
}

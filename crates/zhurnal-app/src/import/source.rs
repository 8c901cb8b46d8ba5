//! Where an import reads from: a directory of CSV files, a ZIP of them, or one XLSX workbook
//! with a sheet per file. Files are opened one at a time and read as a stream (a directory),
//! or one entry at a time (a ZIP, with the unpacked size checked first against zip bombs), or
//! one sheet at a time (a workbook, same limits).

use std::fs::File;
use std::io::{BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

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
                let mut entry = zip.by_index(i).map_err(|e| self.io(e))?;
                if entry.size() > MAX_ENTRY_BYTES {
                    return Err(SourceError::TooBig {
                        path: path.display().to_string(),
                        problem: format!("{name}: {} байт", entry.size()),
                    });
                }
                let mut buf = Vec::new();
                // Read at most the limit + 1 byte: a lying header cannot make us read more.
                (&mut entry)
                    .take(MAX_ENTRY_BYTES + 1)
                    .read_to_end(&mut buf)
                    .map_err(|e| self.io(e))?;
                if buf.len() as u64 > MAX_ENTRY_BYTES {
                    return Err(SourceError::TooBig {
                        path: path.display().to_string(),
                        problem: format!("{name} больше заявленного"),
                    });
                }
                Ok(Some(Box::new(Cursor::new(buf))))
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

//! Files and directories the broker writes: owner-only (directories 0700, files 0600 on Unix),
//! and written atomically. Every file the broker writes goes through here, so what it keeps
//! (the issuer's token hashes, the admin token, upstream registrations, the config, the logs)
//! is readable by this user only, and a crash never leaves a half-written file behind.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Owner-only permissions of a directory the broker creates.
#[cfg(unix)]
const DIR_MODE: u32 = 0o700;
/// Owner-only permissions of a file the broker writes.
#[cfg(unix)]
const FILE_MODE: u32 = 0o600;

/// Creates `dir` and each missing parent owner-only. An existing directory is left as it is
/// (it may be the person's own, such as the folder of a config file they chose).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, DIR_MODE);
    builder.create(dir)
}

/// Options that create a file owner-only (the mode applies only when the file is created).
fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    options
}

/// Writes `bytes` to `path` atomically: a fresh owner-only temporary file next to it, fsync,
/// rename over `path`, fsync of the directory (so the rename itself survives a crash). The
/// parent directory is created owner-only when missing; on failure the temporary file is
/// removed and `path` is untouched.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    create_private_dir(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = private_options().write(true).create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir)
}

/// Makes a rename in `dir` durable. Only Unix can open a directory to sync it.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// A log file per UTC day, `<dir>/<prefix>.YYYY-MM-DD` (the names `tracing-appender`'s daily
/// rotation uses), each created owner-only.
pub struct DailyLog {
    dir: PathBuf,
    prefix: String,
    /// The day (days since the Unix epoch) of the open file, and the file.
    current: Option<(u64, File)>,
}

impl DailyLog {
    /// Creates `dir` owner-only; the file is opened with the first write.
    pub fn new(dir: &Path, prefix: &str) -> io::Result<DailyLog> {
        create_private_dir(dir)?;
        Ok(DailyLog {
            dir: dir.to_path_buf(),
            prefix: prefix.to_string(),
            current: None,
        })
    }

    /// The file for `day` (days since the Unix epoch).
    pub fn path_for(&self, day: u64) -> PathBuf {
        let (y, m, d) = civil_date(day);
        self.dir
            .join(format!("{}.{y:04}-{m:02}-{d:02}", self.prefix))
    }

    fn file(&mut self, day: u64) -> io::Result<&mut File> {
        if self.current.as_ref().is_none_or(|(open, _)| *open != day) {
            let file = private_options()
                .append(true)
                .create(true)
                .open(self.path_for(day))?;
            self.current = Some((day, file));
        }
        Ok(&mut self.current.as_mut().expect("opened above").1)
    }
}

impl Write for DailyLog {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let day = crate::clock::unix_now() / 86_400;
        self.file(day)?.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.current {
            Some((_, file)) => file.flush(),
            None => Ok(()),
        }
    }
}

/// The proleptic Gregorian (year, month, day) of `days` since 1970-01-01 (H. Hinnant's
/// `civil_from_days`).
fn civil_date(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_the_calendar() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(59), (1970, 3, 1));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
        assert_eq!(civil_date(19_723), (2024, 1, 1));
        assert_eq!(civil_date(20_513), (2026, 3, 1));
    }

    #[test]
    fn an_atomic_write_replaces_the_file_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("state.json");
        write_private(&path, b"one").unwrap();
        write_private(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }
}

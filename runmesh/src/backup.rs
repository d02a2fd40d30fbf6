//! `runmesh backup <dir>` and `runmesh restore <dir>`: a single-box install's data directory
//! (RUNMESH_DATA_DIR) copied online and put back.
//!
//! A backup holds every SQLite database under the data directory (one per service, `audit.db`
//! with the delivery audit), each copied with `VACUUM INTO`: one read transaction, so the copy is
//! a consistent snapshot of that database while `runmesh up` keeps writing (WAL mode lets the
//! writers go on), compacted, and checked with `PRAGMA integrity_check`. Every other file under
//! the data directory (svc-run's spooled Strava exports in `run-imports/`) is copied as it is.
//! `manifest.json`, written last, lists each file with its size and SHA-256, each database's
//! latest migration, and the runmesh version: a directory without it is not a backup.
//!
//! Each database is its own snapshot, taken one after the other: an event a service committed
//! after its database was copied may have reached a consumer whose database was copied later.
//! That is the state after a crash, which the services recover from (the consumers' inboxes drop
//! what they already handled; the embedded log keeps what a consumer has not read).
//!
//! Restore refuses to touch a data directory a runmesh process is serving from (it writes
//! `runmesh.pid` there while it serves, with the address it listens on), and one that holds data
//! unless told to replace it (`--force` moves the old files aside first).

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The backup's table of contents, written last.
pub const MANIFEST: &str = "manifest.json";
/// Written into the data directory while a runmesh process serves from it.
pub const RUNNING_MARK: &str = "runmesh.pid";
/// The manifest's format.
const FORMAT: u64 = 1;

/// What a backup or restore did.
#[derive(Debug)]
pub struct Summary {
    pub databases: usize,
    pub files: usize,
    pub bytes: u64,
}

/// Marks `data_dir` as served by this process (pid and gRPC address) until dropped.
pub struct RunningMark {
    path: PathBuf,
}

impl RunningMark {
    pub fn create(data_dir: &Path, grpc: SocketAddr) -> std::io::Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        let path = data_dir.join(RUNNING_MARK);
        let mark = json!({"pid": std::process::id(), "grpc": grpc.to_string()});
        std::fs::write(&path, format!("{mark}\n"))?;
        Ok(Self { path })
    }
}

impl Drop for RunningMark {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Why `data_dir` is in use, if a runmesh process serves from it: its mark names a process that
/// is alive or an address that answers. A mark left by a killed process is stale and ignored.
pub fn in_use(data_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(data_dir.join(RUNNING_MARK)).ok()?;
    let mark: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let pid = mark.get("pid").and_then(Value::as_u64);
    let grpc = mark
        .get("grpc")
        .and_then(Value::as_str)
        .and_then(|addr| addr.parse::<SocketAddr>().ok());
    if let Some(addr) = grpc
        && TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
    {
        return Some(format!(
            "a runmesh process (pid {}) serves from it on {addr}",
            pid.map_or_else(|| "?".to_owned(), |pid| pid.to_string())
        ));
    }
    if let Some(pid) = pid
        && std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains("runmesh"))
    {
        return Some(format!("a runmesh process (pid {pid}) is running on it"));
    }
    None
}

/// Copies every database and file under `data_dir` into `out` (created; must be empty).
pub async fn backup(data_dir: &Path, out: &Path) -> anyhow::Result<Summary> {
    let entries = list(data_dir)
        .with_context(|| format!("reading the data directory {}", data_dir.display()))?;
    if !entries.iter().any(|entry| is_database(entry)) {
        bail!(
            "{}: no database to back up (is RUNMESH_DATA_DIR the data directory of `runmesh up`?)",
            data_dir.display()
        );
    }
    if out.exists() && std::fs::read_dir(out)?.next().is_some() {
        bail!("{}: not empty; back up into a new directory", out.display());
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let out = out
        .canonicalize()
        .with_context(|| format!("resolving {}", out.display()))?;
    if out.starts_with(data_dir.canonicalize()?) {
        bail!(
            "{}: inside the data directory; back up somewhere else",
            out.display()
        );
    }

    let mut files = Vec::new();
    let mut summary = Summary {
        databases: 0,
        files: 0,
        bytes: 0,
    };
    for relative in &entries {
        let source = data_dir.join(relative);
        let target = out.join(relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut record = if is_database(relative) {
            let migration = snapshot(&source, &target)
                .await
                .with_context(|| format!("copying {}", source.display()))?;
            summary.databases += 1;
            json!({"kind": "sqlite", "migration": migration, "integrity": "ok"})
        } else {
            std::fs::copy(&source, &target)
                .with_context(|| format!("copying {}", source.display()))?;
            summary.files += 1;
            json!({"kind": "file"})
        };
        let (bytes, sha256) = checksum(&target)?;
        summary.bytes += bytes;
        record["path"] = json!(portable(relative));
        record["bytes"] = json!(bytes);
        record["sha256"] = json!(sha256);
        files.push(record);
    }
    let manifest = json!({
        "format": FORMAT,
        "runmesh_version": env!("CARGO_PKG_VERSION"),
        "created_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data_dir": data_dir.display().to_string(),
        "files": files,
    });
    let staging = out.join(format!("{MANIFEST}.partial"));
    std::fs::write(&staging, serde_json::to_string_pretty(&manifest)? + "\n")?;
    std::fs::rename(&staging, out.join(MANIFEST))?;
    Ok(summary)
}

/// Puts the backup in `from` into `data_dir`. Refuses a data directory in use, and one holding
/// files unless `force` (which moves them to `<data_dir>.pre-restore-<time>` first).
pub async fn restore(from: &Path, data_dir: &Path, force: bool) -> anyhow::Result<Summary> {
    let text = std::fs::read_to_string(from.join(MANIFEST)).with_context(|| {
        format!(
            "{}: no {MANIFEST}; not a complete backup made by `runmesh backup`",
            from.display()
        )
    })?;
    let manifest: Value = serde_json::from_str(&text).context("reading the manifest")?;
    if manifest.get("format").and_then(Value::as_u64) != Some(FORMAT) {
        bail!(
            "{}: a backup format this runmesh does not know",
            from.display()
        );
    }
    let files = manifest
        .get("files")
        .and_then(Value::as_array)
        .context("the manifest lists no files")?;

    // Everything checked before anything is touched.
    let mut planned = Vec::new();
    for file in files {
        let path = file
            .get("path")
            .and_then(Value::as_str)
            .context("a manifest entry without a path")?;
        let relative = safe_relative(path)?;
        let source = from.join(&relative);
        let (bytes, sha256) =
            checksum(&source).with_context(|| format!("reading {}", source.display()))?;
        if Some(bytes) != file.get("bytes").and_then(Value::as_u64)
            || Some(sha256.as_str()) != file.get("sha256").and_then(Value::as_str)
        {
            bail!(
                "{}: does not match the manifest (size or SHA-256); the backup is damaged",
                source.display()
            );
        }
        let database = file.get("kind").and_then(Value::as_str) == Some("sqlite");
        planned.push((relative, source, bytes, database));
    }

    if let Some(why) = in_use(data_dir) {
        bail!(
            "{}: {why}; stop it before restoring into its data directory",
            data_dir.display()
        );
    }
    let existing = list(data_dir).unwrap_or_default();
    if !existing.is_empty() {
        if !force {
            bail!(
                "{}: holds data ({} files); restore into an empty directory, or pass --force to \
                 move the current files aside and replace them",
                data_dir.display(),
                existing.len()
            );
        }
        let aside = aside_path(data_dir);
        std::fs::rename(data_dir, &aside).with_context(|| {
            format!(
                "moving the current data directory aside to {}",
                aside.display()
            )
        })?;
        eprintln!(
            "runmesh restore: the previous data is in {}",
            aside.display()
        );
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;

    let mut summary = Summary {
        databases: 0,
        files: 0,
        bytes: 0,
    };
    for (relative, source, bytes, database) in planned {
        let target = data_dir.join(&relative);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let staging = target.with_file_name(format!(
            ".{}.restoring",
            target
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        std::fs::copy(&source, &staging)
            .with_context(|| format!("copying {}", source.display()))?;
        std::fs::rename(&staging, &target)?;
        if database {
            integrity(&target)
                .await
                .with_context(|| format!("checking {}", target.display()))?;
            summary.databases += 1;
        } else {
            summary.files += 1;
        }
        summary.bytes += bytes;
    }
    Ok(summary)
}

/// `VACUUM INTO` a consistent copy of `source` at `target`, checks it, and returns its latest
/// migration.
async fn snapshot(source: &Path, target: &Path) -> anyhow::Result<Option<String>> {
    let database = open(source, "ro").await?;
    let into = target.display().to_string().replace('\'', "''");
    database
        .execute_unprepared(&format!("VACUUM INTO '{into}'"))
        .await?;
    database.close().await?;
    integrity(target).await?;
    let copy = open(target, "ro").await?;
    let migration = latest_migration(&copy).await;
    copy.close().await?;
    Ok(migration)
}

async fn integrity(path: &Path) -> anyhow::Result<()> {
    let database = open(path, "ro").await?;
    let rows = database
        .query_all_raw(Statement::from_string(
            database.get_database_backend(),
            "PRAGMA integrity_check",
        ))
        .await?;
    database.close().await?;
    let answers: Vec<String> = rows
        .iter()
        .filter_map(|row| row.try_get_by_index::<String>(0).ok())
        .collect();
    if answers != ["ok"] {
        bail!("integrity check failed: {}", answers.join("; "));
    }
    Ok(())
}

async fn latest_migration(database: &DatabaseConnection) -> Option<String> {
    let row = database
        .query_one_raw(Statement::from_string(
            database.get_database_backend(),
            "SELECT version FROM seaql_migrations ORDER BY version DESC LIMIT 1",
        ))
        .await
        .ok()??;
    row.try_get_by_index::<String>(0).ok()
}

/// One connection to the SQLite file at `path`, leaving its journal mode as it is (a copy from
/// `VACUUM INTO` is not in WAL mode, and a read-only connection cannot change that).
async fn open(path: &Path, mode: &str) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(format!("sqlite://{}?mode={mode}", path.display()));
    options
        .max_connections(1)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(30))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|sqlite| sqlite.busy_timeout(Duration::from_secs(30)));
    Database::connect(options)
        .await
        .with_context(|| format!("opening {}", path.display()))
}

/// Every regular file under `dir`, relative to it, sorted; SQLite's -wal/-shm/-journal files and
/// the running mark left out (a database's copy holds its WAL's committed content).
fn list(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        for entry in std::fs::read_dir(dir.join(&relative))? {
            let entry = entry?;
            let path = relative.join(entry.file_name());
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(path);
            } else if kind.is_file() && !skipped(&path) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

fn skipped(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy())
        .unwrap_or_default();
    name == RUNNING_MARK
        || name.ends_with("-wal")
        || name.ends_with("-shm")
        || name.ends_with("-journal")
        || name.ends_with(".restoring")
}

fn is_database(path: &Path) -> bool {
    path.parent() == Some(Path::new("")) && path.extension().is_some_and(|ext| ext == "db")
}

fn portable(path: &Path) -> String {
    path.components()
        .map(|part| part.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// A manifest path as a relative path that stays inside the directory.
fn safe_relative(path: &str) -> anyhow::Result<PathBuf> {
    let relative = PathBuf::from(path);
    if path.is_empty()
        || relative.is_absolute()
        || relative
            .components()
            .any(|part| !matches!(part, std::path::Component::Normal(_)))
    {
        bail!("the manifest names {path:?}, outside the backup");
    }
    Ok(relative)
}

fn checksum(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0_u8; 1 << 16];
    let mut bytes = 0_u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        bytes += read as u64;
    }
    Ok((bytes, hex::encode(hasher.finalize())))
}

fn aside_path(data_dir: &Path) -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let name = data_dir
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".to_owned());
    data_dir.with_file_name(format!("{name}.pre-restore-{stamp}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn manifest_paths_stay_inside_the_backup() {
        assert!(safe_relative("user.db").is_ok());
        assert!(safe_relative("run-imports/0190.zip").is_ok());
        for bad in ["", "/etc/passwd", "../x.db", "run-imports/../../x", "./a"] {
            assert!(safe_relative(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_top_level_db_files_are_databases() {
        assert!(is_database(Path::new("user.db")));
        assert!(!is_database(Path::new("run-imports/x.db")));
        assert!(!is_database(Path::new("user.db-wal")));
        assert!(skipped(Path::new("user.db-wal")));
        assert!(skipped(Path::new(RUNNING_MARK)));
        assert!(!skipped(Path::new("run-imports/a.zip")));
    }
}

//! The data key on the command line (issue 24; SPEC R11.1): `--key-file`
//! on every command that opens a store, and `platekeeper keys init`,
//! `keys encrypt` and `keys rotate`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use platekeeper_store::at_rest::{self, rekey, DataKey, KEY_ENV};
use platekeeper_store::postgres::DatabaseUrl;
use platekeeper_store::{OpenOptions, Store};

use crate::import::{lock_data_dir, DataLock};

/// Where an encrypted store's key comes from, and where its data is.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct KeyArgs {
    /// The data key's file (made by `platekeeper keys init`; mode 0600,
    /// kept outside the data folder and its backups). Or give the key's
    /// 64 hex digits in the environment variable PLATEKEEPER_DATA_KEY.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Keep the store in this PostgreSQL database instead of the data
    /// folder: postgres://USER[:PASSWORD]@HOST[:PORT]/DB (TLS with
    /// verify-full off loopback; `?sslrootcert=FILE` names the CA), or the
    /// environment variable PLATEKEEPER_DATABASE. The data folder then
    /// holds only the checkpoint key and temporary export files.
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
}

impl KeyArgs {
    /// The key given, if any; both ways at once is refused, so there is
    /// never a doubt which key a store was opened with.
    pub fn load(&self) -> anyhow::Result<Option<Arc<DataKey>>> {
        let env = std::env::var(KEY_ENV).ok().filter(|v| !v.trim().is_empty());
        let key = match (&self.key_file, env) {
            (Some(_), Some(_)) => {
                bail!("the data key is given twice (--key-file and {KEY_ENV}); give it one way")
            }
            (Some(path), None) => DataKey::load(path)?,
            (None, Some(text)) => DataKey::parse(&text, KEY_ENV)?,
            (None, None) => return Ok(None),
        };
        hold_key_privately();
        Ok(Some(Arc::new(key)))
    }

    /// The PostgreSQL database given, if any (`--database` or
    /// PLATEKEEPER_DATABASE).
    pub fn database(&self) -> anyhow::Result<Option<DatabaseUrl>> {
        Ok(DatabaseUrl::from_option_or_env(self.database.as_deref())?)
    }
}

/// Once the process holds a data key: no core file that would write it
/// to disk, and no other process of the same account attaching to read
/// it (docs/SECURITY.md, Encryption at rest).
pub fn hold_key_privately() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) only changes this process's own
    // dumpable flag; it has no memory-safety preconditions.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

/// Checks the folder against the key (changing nothing: a wrong key
/// stops here, before the lock file or anything else is made), then
/// takes the folder's lock.
pub fn check_and_lock(data: &Path, key: Option<&DataKey>) -> anyhow::Result<DataLock> {
    at_rest::check(data, key).with_context(|| format!("opening {}", data.display()))?;
    lock_data_dir(data)
}

/// The store in `data`, under its lock, opened with the key given.
pub fn open_locked(data: &Path, keys: &KeyArgs) -> anyhow::Result<(DataLock, Store)> {
    let key = keys.load()?;
    let database = keys.database()?;
    let lock = check_and_lock(data, key.as_deref())?;
    let store = open_in(data, key, database)?;
    Ok((lock, store))
}

/// The store in `data`, opened with `key` (the caller holds the lock).
pub fn open(data: &Path, key: Option<Arc<DataKey>>) -> anyhow::Result<Store> {
    open_in(data, key, None)
}

/// The store in `data`, or in `database` when one is given.
pub fn open_in(
    data: &Path,
    key: Option<Arc<DataKey>>,
    database: Option<DatabaseUrl>,
) -> anyhow::Result<Store> {
    let place = match &database {
        Some(url) => format!("the store in {url}"),
        None => format!("the store in {}", data.display()),
    };
    Store::open_with(
        data,
        OpenOptions {
            key,
            database,
            ..OpenOptions::default()
        },
    )
    .with_context(|| format!("opening {place}"))
}

/// `keys init`: a new key in a new file.
pub fn init(key_file: &Path) -> anyhow::Result<()> {
    let key = DataKey::create(key_file)?;
    println!(
        "wrote a new data key to {} (id {}). Keep it off the data folder and its backups, \
         readable by the server's account only, and keep a copy where the agency keeps its \
         secrets: without it the data cannot be read.",
        key_file.display(),
        key.id()
    );
    Ok(())
}

/// The key in `path`, made there first if the file does not exist.
fn load_or_create(path: &Path) -> anyhow::Result<DataKey> {
    if path.exists() {
        return Ok(DataKey::load(path)?);
    }
    let key = DataKey::create(path)?;
    eprintln!(
        "wrote a new data key to {} (id {})",
        path.display(),
        key.id()
    );
    Ok(key)
}

/// `keys encrypt`: a plain store encrypted under the key in `key_file`
/// (made if missing).
pub fn encrypt(data: &Path, key_file: &Path, database: Option<&str>) -> anyhow::Result<()> {
    if std::env::var(KEY_ENV).is_ok_and(|v| !v.trim().is_empty()) {
        bail!("{KEY_ENV} is set: `keys encrypt` takes the new key from --key-file only");
    }
    let database = DatabaseUrl::from_option_or_env(database)?;
    let _lock = lock_data_dir(data)?;
    let to = load_or_create(key_file)?;
    match &database {
        Some(url) => {
            reseal_database(url, None, &to)?;
            at_rest::mark_database_store(data, None, &to)?;
        }
        None => run_rekey(data, None, &to)?,
    }
    println!(
        "{} is encrypted under key {}; start the server with --key-file {}",
        data.display(),
        to.id(),
        key_file.display()
    );
    Ok(())
}

/// `keys rotate`: re-encrypts under the key in `new_key_file` (made if
/// missing).
pub fn rotate(data: &Path, current: &KeyArgs, new_key_file: &Path) -> anyhow::Result<()> {
    let Some(from) = current.load()? else {
        bail!("give the store's current key with --key-file FILE (or {KEY_ENV})");
    };
    if current.key_file.as_deref() == Some(new_key_file) {
        bail!("--new-key-file must be a new file, not the current key's");
    }
    let database = current.database()?;
    let _lock = lock_data_dir(data)?;
    let to = load_or_create(new_key_file)?;
    match &database {
        Some(url) => {
            reseal_database(url, Some(&from), &to)?;
            at_rest::mark_database_store(data, Some(&from), &to)?;
        }
        None => run_rekey(data, Some(&from), &to)?,
    }
    println!(
        "{} is now encrypted under key {} ({}); start the server with --key-file {}. \
         Keep the old key (id {}) only as long as backups made under it are kept.",
        data.display(),
        to.id(),
        new_key_file.display(),
        new_key_file.display(),
        from.id()
    );
    Ok(())
}

/// Seals a PostgreSQL store's pictures again under `to` (from `from`, or
/// as given when the store had no key), before the data folder's marker
/// changes: an interrupted run leaves the folder naming the old key, and
/// running the command again finishes the pictures (those already under
/// `to` are left).
fn reseal_database(url: &DatabaseUrl, from: Option<&DataKey>, to: &DataKey) -> anyhow::Result<()> {
    hold_key_privately();
    let (pool, _) = platekeeper_store::postgres::open(url)?;
    let mut conn = pool.get()?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} pictures ({eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let from = from.map(at_rest::PictureKey::new);
    let changed = platekeeper_store::postgres::pictures::reseal(
        &mut conn,
        from.as_ref(),
        &at_rest::PictureKey::new(to),
        &to.id(),
        |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        },
    )
    .with_context(|| {
        format!("sealing the pictures in {url} again (it can be run again to finish)")
    })?;
    bar.finish_and_clear();
    println!("sealed {changed} pictures in {url} under key {}", to.id());
    Ok(())
}

fn run_rekey(data: &Path, from: Option<&DataKey>, to: &DataKey) -> anyhow::Result<()> {
    hold_key_privately();
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let report = rekey::rekey(data, from, to, |p| {
        bar.set_length(p.bytes_total);
        bar.set_position(p.bytes_done);
        bar.set_message(format!("{}/{} files", p.files_done, p.files_total));
    })
    .with_context(|| {
        format!(
            "changing the key of {} (it can be run again to finish)",
            data.display()
        )
    })?;
    bar.finish_and_clear();
    eprintln!(
        "re-encrypted {} database files and {} pictures ({} bytes); {} already done by an earlier run",
        report.databases, report.pictures, report.bytes, report.already_done
    );
    Ok(())
}

//! Evidence packages (SPEC R6.2; policy 001 § 467.5: "downloaded from the
//! server onto portable media and booked into evidence").
//!
//! A package is a zip file holding:
//! * `reads.json` and `reads.csv` — the records;
//! * `images/<sha256>.<ext>` — every picture of those reads, named by its
//!   digest;
//! * `custody.json` — the chain of custody: the case, the hold, who placed
//!   it and when, who exported the package, when, under which logged
//!   access, and (for a share) the receiving agency and the approval;
//! * `manifest.json` — the SHA-256 and size of every other file.
//!
//! [`verify`] recomputes every digest and reports any file that is
//! missing, altered, or not in the manifest, so anyone holding the zip
//! (a court, the receiving agency) can check it with
//! `platekeeper evidence verify FILE.zip`. Entries are stored, not
//! compressed: pictures do not shrink, and the check needs no inflater.

use std::collections::BTreeMap;
use std::io::{Read, Seek, Write};

use platekeeper_core::audit_report::csv_cell;
use platekeeper_core::read::format_time_ms;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::images::ImageStore;
use crate::search::StoredRead;
use crate::StoreError;

/// Largest package built. Packages are written to a spool file on the
/// data disk as they are made, not held in memory, so this bounds the
/// disk one export may take rather than the server's memory.
pub const MAX_PACKAGE_BYTES: u64 = 16 << 30;
/// Largest file inside a package that [`verify`] reads.
pub const MAX_ENTRY_BYTES: u64 = 64 << 20;
/// Most files a package may hold ([`build`] refuses more, so every package
/// it makes passes [`verify`]).
pub const MAX_ENTRIES: usize = 200_000;

#[derive(Serialize)]
struct ReadRecord<'a> {
    read_id: String,
    plate: String,
    state: Option<String>,
    ts: String,
    lat: Option<f64>,
    lon: Option<f64>,
    camera: &'a str,
    heading: Option<u16>,
    confidence: Option<u8>,
    plate_image: Option<String>,
    vehicle_image: Option<String>,
}

#[derive(Serialize, serde::Deserialize)]
struct Manifest {
    format: String,
    created_at: String,
    files: Vec<ManifestEntry>,
}

#[derive(Serialize, serde::Deserialize)]
struct ManifestEntry {
    name: String,
    sha256: String,
    bytes: u64,
}

/// A built package: a zip in an unnamed spool file (removed by the
/// system when the handle is dropped, even if the process dies), read
/// from the start.
pub struct Package {
    pub file: std::fs::File,
    /// Size of the zip in bytes.
    pub size: u64,
    pub sha256: String,
    pub file_name: String,
    pub reads: usize,
    pub images: usize,
}

/// Writes the package's files into the zip one at a time, keeping each
/// one's digest for the manifest.
struct ZipSpool<'a> {
    zip: zip::ZipWriter<std::fs::File>,
    entries: Vec<ManifestEntry>,
    total: u64,
    /// Where the spool file is, for errors (a full disk names it).
    dir: &'a std::path::Path,
}

impl ZipSpool<'_> {
    fn add(&mut self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.total += bytes.len() as u64;
        if self.total > MAX_PACKAGE_BYTES || self.entries.len() + 2 > MAX_ENTRIES {
            return Err(StoreError::invalid(
                "package_too_large",
                format!(
                    "the package would exceed {} GB or {MAX_ENTRIES} files; place the reads on smaller holds and export each",
                    MAX_PACKAGE_BYTES >> 30
                ),
            ));
        }
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(false);
        let dir = self.dir;
        self.zip
            .start_file(name, options)
            .map_err(|e| zip_error(dir, e))?;
        self.zip
            .write_all(bytes)
            .map_err(|e| StoreError::io(dir, e))?;
        self.entries.push(ManifestEntry {
            name: name.to_string(),
            sha256: hex::encode(Sha256::digest(bytes)),
            bytes: bytes.len() as u64,
        });
        Ok(())
    }
}

/// A zip writer's failure: the disk's, named by the spool folder, or the
/// writer's own.
fn zip_error(dir: &std::path::Path, e: zip::result::ZipError) -> StoreError {
    match e {
        zip::result::ZipError::Io(e) => StoreError::io(dir, e),
        e => StoreError::Corrupt(format!("writing package: {e}")),
    }
}

/// Builds a package of `reads` with `custody` (any JSON object; `files`
/// and `digests` are added by the manifest, not here), spooled in
/// `spool_dir`. Memory holds one picture at a time, whatever the size.
pub(crate) fn build(
    images: &ImageStore,
    spool_dir: &std::path::Path,
    reads: &[StoredRead],
    custody: serde_json::Value,
    file_stem: &str,
    now_ms: i64,
) -> Result<Package, StoreError> {
    let mut pictures: BTreeMap<String, (i32, crate::images::ImageRef)> = BTreeMap::new();
    let name_of = |i: &crate::images::ImageRef| {
        format!("images/{}.{}", hex::encode(i.sha256), i.kind.extension())
    };
    let mut records = Vec::with_capacity(reads.len());
    for r in reads {
        for i in [r.plate_image, r.vehicle_image].into_iter().flatten() {
            pictures.insert(name_of(&i), (r.locator.day, i));
        }
        records.push(read_record(
            r,
            r.plate_image.as_ref().map(name_of),
            r.vehicle_image.as_ref().map(name_of),
        ));
    }
    crate::private::create_dir(spool_dir)?;
    let file = tempfile::tempfile_in(spool_dir).map_err(|e| StoreError::io(spool_dir, e))?;
    let mut spool = ZipSpool {
        zip: zip::ZipWriter::new(file),
        entries: Vec::new(),
        total: 0,
        dir: spool_dir,
    };
    spool.add("reads.json", &pretty(&records)?)?;
    spool.add("reads.csv", reads_csv(&records).as_bytes())?;
    for (name, (day, i)) in &pictures {
        spool.add(name, &images.read(*day, i)?)?;
    }
    spool.add("custody.json", &pretty(&custody)?)?;
    let manifest = Manifest {
        format: "platekeeper-evidence-1".into(),
        created_at: format_time_ms(now_ms),
        files: std::mem::take(&mut spool.entries),
    };
    let manifest = pretty(&manifest)?;
    spool.add("manifest.json", &manifest)?;

    let mut file = spool.zip.finish().map_err(|e| zip_error(spool_dir, e))?;
    // The zip's own digest, read back: the writer goes back to fill in
    // each entry's header, so it cannot be hashed on the way out.
    file.seek(std::io::SeekFrom::Start(0))
        .map_err(|e| StoreError::io(spool_dir, e))?;
    let mut h = Sha256::new();
    let size = std::io::copy(&mut file, &mut h).map_err(|e| StoreError::io(spool_dir, e))?;
    file.seek(std::io::SeekFrom::Start(0))
        .map_err(|e| StoreError::io(spool_dir, e))?;
    Ok(Package {
        file,
        size,
        sha256: hex::encode(h.finalize()),
        file_name: format!("{file_stem}.zip"),
        reads: reads.len(),
        images: pictures.len(),
    })
}

/// The records as CSV, one line per read.
/// A read as the package's files give it, with its pictures' names.
fn read_record(
    r: &StoredRead,
    plate_image: Option<String>,
    vehicle_image: Option<String>,
) -> ReadRecord<'_> {
    ReadRecord {
        read_id: r.id.to_string(),
        plate: r.plate.to_string(),
        state: r.region.map(|g| g.to_string()),
        ts: format_time_ms(r.ts_ms),
        lat: r.position.map(|p| p.lat),
        lon: r.position.map(|p| p.lon),
        camera: &r.camera,
        heading: r.heading,
        confidence: r.confidence,
        plate_image,
        vehicle_image,
    }
}

/// Search results as one CSV file (the columns of an evidence package's
/// `reads.csv`, without pictures), spooled to disk like a package.
pub(crate) fn csv_file(
    spool_dir: &std::path::Path,
    reads: &[StoredRead],
    file_stem: &str,
) -> Result<Package, StoreError> {
    let records: Vec<ReadRecord> = reads.iter().map(|r| read_record(r, None, None)).collect();
    let csv = reads_csv(&records);
    crate::private::create_dir(spool_dir)?;
    let mut file = tempfile::tempfile_in(spool_dir).map_err(|e| StoreError::io(spool_dir, e))?;
    file.write_all(csv.as_bytes())
        .and_then(|()| file.seek(std::io::SeekFrom::Start(0)).map(|_| ()))
        .map_err(|e| StoreError::io(spool_dir, e))?;
    Ok(Package {
        file,
        size: csv.len() as u64,
        sha256: hex::encode(Sha256::digest(csv.as_bytes())),
        file_name: format!("{file_stem}.csv"),
        reads: reads.len(),
        images: 0,
    })
}

fn reads_csv(records: &[ReadRecord]) -> String {
    let mut csv = String::from(
        "read_id,plate,state,ts,lat,lon,camera,heading,confidence,plate_image,vehicle_image\n",
    );
    let opt = |v: Option<String>| v.unwrap_or_default();
    for r in records {
        let cells = [
            r.read_id.clone(),
            r.plate.clone(),
            opt(r.state.clone()),
            r.ts.clone(),
            opt(r.lat.map(|v| v.to_string())),
            opt(r.lon.map(|v| v.to_string())),
            r.camera.to_string(),
            opt(r.heading.map(|v| v.to_string())),
            opt(r.confidence.map(|v| v.to_string())),
            opt(r.plate_image.clone()),
            opt(r.vehicle_image.clone()),
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        csv.push_str(&line.join(","));
        csv.push('\n');
    }
    csv
}

fn pretty<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec_pretty(v).map_err(|e| StoreError::Corrupt(format!("json: {e}")))
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PackageCheck {
    pub ok: bool,
    /// Files the manifest lists.
    pub files: usize,
    pub reads: Option<usize>,
    /// Everything wrong, one sentence each.
    pub problems: Vec<String>,
    /// The custody record, when it could be read.
    pub custody: Option<serde_json::Value>,
}

/// Checks a package: the manifest lists every other file, and every file
/// has the digest and size the manifest gives. Hostile input (not a zip,
/// huge or compressed entries, duplicate or odd names) is a problem
/// reported, never a panic.
pub fn verify(reader: impl Read + std::io::Seek) -> PackageCheck {
    let mut problems = Vec::new();
    let fail = |p: String| PackageCheck {
        ok: false,
        files: 0,
        reads: None,
        problems: vec![p],
        custody: None,
    };
    let mut zip = match zip::ZipArchive::new(reader) {
        Ok(z) => z,
        Err(e) => return fail(format!("not a readable zip file: {e}")),
    };
    if zip.len() > MAX_ENTRIES {
        return fail(format!(
            "{} files; a package holds at most {MAX_ENTRIES}",
            zip.len()
        ));
    }
    let mut contents: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut digests: BTreeMap<String, (String, u64)> = BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = match zip.by_index(i) {
            Ok(f) => f,
            Err(e) => {
                problems.push(format!("entry {i} cannot be read: {e}"));
                continue;
            }
        };
        let name = f.name().to_string();
        if name.starts_with('/') || name.split('/').any(|p| p == "..") {
            problems.push(format!("{name:?} is not a plain relative name"));
            continue;
        }
        if f.size() > MAX_ENTRY_BYTES {
            problems.push(format!(
                "{name} is {} bytes; larger than any file a package holds",
                f.size()
            ));
            continue;
        }
        let mut h = Sha256::new();
        let mut kept = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        let mut n_total = 0u64;
        let keep = name == "manifest.json" || name == "custody.json" || name == "reads.json";
        let read_ok = loop {
            match f.read(&mut buf) {
                Ok(0) => break true,
                Ok(n) => {
                    n_total += n as u64;
                    if n_total > MAX_ENTRY_BYTES {
                        problems.push(format!("{name} is larger than its header says"));
                        break false;
                    }
                    h.update(&buf[..n]);
                    if keep {
                        kept.extend_from_slice(&buf[..n]);
                    }
                }
                Err(e) => {
                    problems.push(format!("{name} cannot be read: {e}"));
                    break false;
                }
            }
        };
        if !read_ok {
            continue;
        }
        if digests
            .insert(name.clone(), (hex::encode(h.finalize()), n_total))
            .is_some()
        {
            problems.push(format!("{name} appears twice in the zip"));
        }
        if keep {
            contents.insert(name, kept);
        }
    }
    let manifest: Manifest = match contents
        .get("manifest.json")
        .map(|b| serde_json::from_slice(b))
    {
        Some(Ok(m)) => m,
        Some(Err(e)) => return fail(format!("manifest.json is not a valid manifest: {e}")),
        None => return fail("manifest.json is missing".into()),
    };
    let mut listed = std::collections::HashSet::new();
    for e in &manifest.files {
        listed.insert(e.name.as_str());
        match digests.get(&e.name) {
            None => problems.push(format!("{} is listed in the manifest but missing", e.name)),
            Some((sha, bytes)) => {
                if !sha.eq_ignore_ascii_case(&e.sha256) {
                    problems.push(format!(
                        "{} was altered: its SHA-256 is {sha}, the manifest says {}",
                        e.name, e.sha256
                    ));
                } else if *bytes != e.bytes {
                    problems.push(format!(
                        "{} is {bytes} bytes, the manifest says {}",
                        e.name, e.bytes
                    ));
                }
            }
        }
    }
    for name in digests.keys() {
        if name != "manifest.json" && !listed.contains(name.as_str()) {
            problems.push(format!("{name} is in the zip but not in the manifest"));
        }
    }
    for required in ["reads.json", "reads.csv", "custody.json"] {
        if !listed.contains(required) {
            problems.push(format!("the manifest does not list {required}"));
        }
    }
    let reads = contents
        .get("reads.json")
        .and_then(|b| serde_json::from_slice::<Vec<serde_json::Value>>(b).ok())
        .map(|v| v.len());
    let custody = contents
        .get("custody.json")
        .and_then(|b| serde_json::from_slice(b).ok());
    PackageCheck {
        ok: problems.is_empty(),
        files: manifest.files.len(),
        reads,
        problems,
        custody,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spool(dir: &std::path::Path) -> ZipSpool<'_> {
        ZipSpool {
            zip: zip::ZipWriter::new(tempfile::tempfile_in(dir).unwrap()),
            entries: Vec::new(),
            total: 0,
            dir,
        }
    }

    /// A package past its size or file cap is refused by name, before the
    /// file that would pass the cap is written.
    #[test]
    fn packages_past_their_caps_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spool(dir.path());
        s.add("reads.json", b"[]").unwrap();
        s.total = MAX_PACKAGE_BYTES - 10;
        let err = s.add("images/a.jpg", &[0u8; 11]).unwrap_err();
        assert!(
            matches!(
                &err,
                StoreError::Invalid {
                    code: "package_too_large",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(s.entries.len(), 1, "nothing was added");

        let mut s = spool(dir.path());
        for i in 0..MAX_ENTRIES - 1 {
            s.entries.push(ManifestEntry {
                name: format!("images/{i}.jpg"),
                sha256: String::new(),
                bytes: 0,
            });
        }
        // One more file and the manifest would pass the file cap.
        let err = s.add("custody.json", b"{}").unwrap_err();
        assert!(err.to_string().contains("200000 files"), "{err}");
        // One fewer, and the package ends at the cap exactly: allowed.
        s.entries.pop();
        s.add("custody.json", b"{}").unwrap();
    }

    /// Every file goes into the zip with its digest in the manifest list.
    #[test]
    fn each_file_added_is_listed_with_its_digest() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spool(dir.path());
        s.add("reads.csv", b"read_id\n").unwrap();
        assert_eq!(s.entries[0].name, "reads.csv");
        assert_eq!(s.entries[0].bytes, 8);
        assert_eq!(
            s.entries[0].sha256,
            hex::encode(Sha256::digest(b"read_id\n"))
        );
        assert_eq!(s.total, 8);
    }
}

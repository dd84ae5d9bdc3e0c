//! The disk buffer: append-only, checksummed segment files that outlive the process.
//!
//! # Layout
//! A directory of segment files named `<created-ms>-<writer-id>-<n>.seg`. Each file is a
//! sequence of records: `magic (4) | kind (1) | payload length (4, LE) | CRC-32 of kind, length and
//! payload (4, LE) | payload`. A *batch* record holds one sealed batch (its writer, batch id,
//! record number, message offsets and message bytes); an *ack* record names a batch record of
//! the same file that was delivered (or permanently dropped) and must not be replayed.
//!
//! # Write-ahead
//! Every batch is appended when it is sealed, before its first send, so once a batch is sealed a
//! crash cannot lose it. Its ack is appended when the collector acknowledges it. A file is
//! deleted once every batch in it is acked.
//!
//! # Ownership between processes
//! A process holds an exclusive advisory lock (`flock` on Unix, `LockFileEx` on Windows) on every
//! file it writes or replays, for as long as it has batches from that file in memory. Another
//! process only replays a file it can lock, and after locking re-checks that the path still names
//! the same file, so a file deleted by its previous holder is never replayed twice. Locks are
//! released by the OS when a process dies, SIGKILL included, so its files become replayable at
//! once.
//!
//! # Damage
//! A record whose checksum fails (a write torn by a kill, a flipped bit) is skipped with a
//! warning and counted in [`Stats::corrupt_records`](crate::Stats::corrupt_records); reading
//! resumes at the next record magic. A damaged file never stops the client.
//!
//! Writes are not fsynced per record: data in the page cache survives the death of the process
//! (SIGKILL, panic, OOM kill) but not of the machine. Files are fsynced on shutdown.

use std::{
    collections::{HashMap, HashSet},
    fs::{self, File, OpenOptions, TryLockError},
    io::{Read, Write},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use crate::{
    DropReason, Error,
    batch::{Batch, BatchId},
    report::Reporter,
};

const MAGIC: [u8; 4] = [0xB1, b'P', b'L', b'R'];
const HEADER_LEN: usize = 13;
const KIND_BATCH: u8 = 1;
const KIND_ACK: u8 = 2;
const EXTENSION: &str = "seg";

/// Settings of the disk buffer. Every field documents its default.
///
/// ```
/// use pulseline::DiskBufferOptions;
/// use std::time::Duration;
///
/// let mut disk = DiskBufferOptions::default();
/// disk.directory = Some("/var/lib/myapp/pulseline".into());
/// disk.max_bytes = 64 * 1024 * 1024;
/// assert_eq!(disk.max_age, Duration::from_secs(7 * 24 * 3600));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiskBufferOptions {
    /// Where segment files live. Default `None`: `<user cache dir>/pulseline/<hash of host and
    /// write key>` (`~/.cache/pulseline/…` on Linux, `~/Library/Caches/pulseline/…` on macOS,
    /// `%LOCALAPPDATA%\pulseline\…` on Windows; without a home directory,
    /// `<temp dir>/pulseline-<uid>/…`), so one user's clients of the same project share (and
    /// drain) one buffer. Created `0700` with `0600` files; a directory owned by another user is
    /// refused ([`Error::Disk`](crate::Error::Disk), reported to `on_error`) and events are then
    /// kept in memory only.
    pub directory: Option<PathBuf>,
    /// Upper bound on the directory's total size. Default 256 MiB. When reached, batches that
    /// cannot be sent stay in memory only (and are dropped as `disk_full` once their retry budget
    /// runs out).
    pub max_bytes: u64,
    /// Batches older than this are deleted unsent, counted as `expired`. Default 7 days.
    pub max_age: Duration,
    /// A segment file is closed for appends at this size. Default 4 MiB, lowered to an eighth
    /// of [`max_buffered_bytes`](crate::ClientOptions::max_buffered_bytes) if that is smaller,
    /// because a segment is replayed into memory whole.
    pub segment_bytes: u64,
}

impl Default for DiskBufferOptions {
    fn default() -> Self {
        DiskBufferOptions {
            directory: None,
            max_bytes: 256 * 1024 * 1024,
            max_age: Duration::from_secs(7 * 24 * 3600),
            segment_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Where a batch's write-ahead copy is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DiskRef {
    segment: u64,
    record: u64,
}

/// A batch read back from a segment.
#[derive(Debug)]
pub(crate) struct Replayed {
    pub(crate) disk: DiskRef,
    /// The client instance that wrote it.
    pub(crate) writer: u64,
    /// The batch, with the id its writer gave it.
    pub(crate) batch: Batch,
}

/// A segment this process holds locked.
#[derive(Debug)]
struct Held {
    path: PathBuf,
    file: File,
    bytes: u64,
    next_record: u64,
    /// Batches from this file that are in memory.
    outstanding: usize,
    /// Batches from this file that left memory unacked (their only copy is the file).
    parked: usize,
    sealed: bool,
}

#[derive(Debug)]
pub(crate) struct DiskBuffer {
    dir: PathBuf,
    options: DiskBufferOptions,
    writer_id: u64,
    reporter: Arc<Reporter>,
    held: HashMap<u64, Held>,
    active: Option<u64>,
    next_segment: u64,
    approx_bytes: u64,
    scratch: Vec<u8>,
    /// Set when a segment with parked batches was released, so it is worth replaying now.
    released_parked: bool,
}

impl DiskBuffer {
    pub(crate) fn open(
        dir: PathBuf,
        options: DiskBufferOptions,
        writer_id: u64,
        reporter: Arc<Reporter>,
    ) -> Result<Self, Error> {
        fs::create_dir_all(&dir).map_err(|source| Error::Disk {
            path: dir.clone(),
            source,
        })?;
        let mut buffer = DiskBuffer {
            dir,
            options,
            writer_id,
            reporter,
            held: HashMap::new(),
            active: None,
            next_segment: 0,
            approx_bytes: 0,
            scratch: Vec::new(),
            released_parked: false,
        };
        buffer.approx_bytes = buffer.segment_paths()?.iter().map(|(_, size)| size).sum();
        Ok(buffer)
    }

    /// Appends a batch. `Ok(None)` when the byte bound leaves no room.
    pub(crate) fn append(
        &mut self,
        batch: &Batch,
        now: SystemTime,
    ) -> Result<Option<DiskRef>, Error> {
        let record_len = (HEADER_LEN + 28 + 4 * batch.ends.len() + batch.joined.len()) as u64;
        if self.approx_bytes + record_len > self.options.max_bytes {
            return Ok(None);
        }
        let segment = match self.active {
            Some(segment) => segment,
            None => self.create_segment(now)?,
        };
        let held = self.held.get_mut(&segment).ok_or(Error::Closed)?;
        let record = held.next_record;
        self.scratch.clear();
        let scratch = &mut self.scratch;
        encode_record(scratch, KIND_BATCH, |p| {
            p.extend_from_slice(&self.writer_id.to_le_bytes());
            p.extend_from_slice(&batch.id.to_le_bytes());
            p.extend_from_slice(&record.to_le_bytes());
            p.extend_from_slice(&(batch.ends.len() as u32).to_le_bytes());
            for end in &batch.ends {
                p.extend_from_slice(&end.to_le_bytes());
            }
            p.extend_from_slice(&batch.joined);
        });
        held.file.write_all(scratch).map_err(|source| Error::Disk {
            path: held.path.clone(),
            source,
        })?;
        held.next_record += 1;
        held.outstanding += 1;
        held.bytes += scratch.len() as u64;
        self.approx_bytes += scratch.len() as u64;
        if held.bytes >= self.options.segment_bytes {
            self.seal(segment);
        }
        Ok(Some(DiskRef { segment, record }))
    }

    /// The batch was delivered or permanently dropped: never replay it.
    pub(crate) fn ack(&mut self, disk: DiskRef) {
        let Some(held) = self.held.get_mut(&disk.segment) else {
            return;
        };
        self.scratch.clear();
        encode_record(&mut self.scratch, KIND_ACK, |p| {
            p.extend_from_slice(&disk.record.to_le_bytes())
        });
        match held.file.write_all(&self.scratch) {
            Ok(()) => {
                held.bytes += self.scratch.len() as u64;
                self.approx_bytes += self.scratch.len() as u64;
            }
            // The batch will be replayed once more; the collector dedupes it.
            Err(source) => self.reporter.error(&Error::Disk {
                path: held.path.clone(),
                source,
            }),
        }
        held.outstanding = held.outstanding.saturating_sub(1);
        self.finish_if_done(disk.segment);
    }

    /// The batch leaves memory unacked; the file keeps it for a later replay.
    pub(crate) fn park(&mut self, disk: DiskRef) {
        let Some(held) = self.held.get_mut(&disk.segment) else {
            return;
        };
        held.outstanding = held.outstanding.saturating_sub(1);
        held.parked += 1;
        self.finish_if_done(disk.segment);
    }

    /// Whether the segment being appended to holds parked batches (which only become
    /// replayable once it is sealed and released).
    pub(crate) fn active_has_parked(&self) -> bool {
        self.active
            .and_then(|s| self.held.get(&s))
            .is_some_and(|h| h.parked > 0)
    }

    /// Whether a segment holding parked batches became replayable since the last call.
    pub(crate) fn take_released_parked(&mut self) -> bool {
        std::mem::take(&mut self.released_parked)
    }

    /// Stops appending to the active segment (it is released once nothing from it is in memory).
    pub(crate) fn seal_active(&mut self) {
        if let Some(segment) = self.active {
            self.seal(segment);
        }
    }

    fn seal(&mut self, segment: u64) {
        if let Some(held) = self.held.get_mut(&segment) {
            held.sealed = true;
        }
        if self.active == Some(segment) {
            self.active = None;
        }
        self.finish_if_done(segment);
    }

    fn finish_if_done(&mut self, segment: u64) {
        let done = self
            .held
            .get(&segment)
            .is_some_and(|h| h.sealed && h.outstanding == 0);
        if !done {
            return;
        }
        let Some(held) = self.held.remove(&segment) else {
            return;
        };
        self.released_parked |= held.parked > 0;
        if held.parked == 0 {
            // Delete while still holding the lock: a process that opened the file before this
            // and locks it after sees that the path is gone and skips it.
            match fs::remove_file(&held.path) {
                Ok(()) => self.approx_bytes = self.approx_bytes.saturating_sub(held.bytes),
                Err(source) => self.reporter.error(&Error::Disk {
                    path: held.path.clone(),
                    source,
                }),
            }
        }
        drop(held.file);
    }

    /// Claims the oldest segment no process holds, returning its unacked batches.
    pub(crate) fn claim_next(&mut self, now: SystemTime) -> Result<Option<Vec<Replayed>>, Error> {
        let segments = self.segment_paths()?;
        self.approx_bytes = segments.iter().map(|(_, size)| size).sum::<u64>();
        for (path, _) in segments {
            if self.held.values().any(|h| h.path == path) {
                continue;
            }
            if let Some(replayed) = self.try_claim(&path, now)? {
                return Ok(Some(replayed));
            }
        }
        Ok(None)
    }

    fn try_claim(&mut self, path: &Path, now: SystemTime) -> Result<Option<Vec<Replayed>>, Error> {
        let disk_error = |source| Error::Disk {
            path: path.to_owned(),
            source,
        };
        let mut file = match OpenOptions::new().read(true).append(true).open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(disk_error(source)),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(source)) => return Err(disk_error(source)),
        }
        if !still_linked(&file, path) {
            return Ok(None);
        }
        let mut data = Vec::new();
        file.read_to_end(&mut data).map_err(disk_error)?;
        let parsed = parse_segment(&data);
        for &offset in &parsed.corrupt_offsets {
            let error = Error::CorruptRecord {
                path: path.to_owned(),
                offset,
            };
            tracing::warn!(%error, "skipping damaged disk-buffer record");
            crate::stats::Counters::add(&self.reporter.counters.corrupt_records, 1);
            self.reporter.error(&error);
        }
        let next_record = parsed
            .batches
            .iter()
            .map(|b| b.record + 1)
            .max()
            .unwrap_or(0);
        let unacked: Vec<_> = parsed
            .batches
            .into_iter()
            .filter(|b| !parsed.acks.contains(&b.record))
            .collect();
        let expired = created_at(path).is_some_and(|created| {
            now.duration_since(created).unwrap_or(Duration::ZERO) > self.options.max_age
        });
        if expired {
            let messages = unacked.iter().map(|b| b.batch.len() as u64).sum();
            tracing::warn!(path = %path.display(), messages, "deleting expired disk-buffer segment");
            self.reporter.dropped(DropReason::Expired, messages);
        }
        if expired || unacked.is_empty() {
            fs::remove_file(path).map_err(disk_error)?;
            self.approx_bytes = self.approx_bytes.saturating_sub(data.len() as u64);
            return Ok(None);
        }
        let segment = self.next_segment;
        self.next_segment += 1;
        self.held.insert(
            segment,
            Held {
                path: path.to_owned(),
                file,
                bytes: data.len() as u64,
                next_record,
                outstanding: unacked.len(),
                parked: 0,
                sealed: true,
            },
        );
        let replayed = unacked
            .into_iter()
            .map(|b| Replayed {
                disk: DiskRef {
                    segment,
                    record: b.record,
                },
                writer: b.writer,
                batch: b.batch,
            })
            .collect();
        Ok(Some(replayed))
    }

    /// Flushes held files to stable storage and releases them, deleting fully delivered ones
    /// (shutdown).
    pub(crate) fn close(&mut self) {
        for (_, held) in self.held.drain() {
            // Everything in it was delivered (the active segment, typically): nothing to keep.
            let result = if held.outstanding == 0 && held.parked == 0 {
                fs::remove_file(&held.path)
            } else {
                held.file.sync_data()
            };
            if let Err(source) = result {
                self.reporter.error(&Error::Disk {
                    path: held.path.clone(),
                    source,
                });
            }
        }
        self.active = None;
    }

    fn create_segment(&mut self, now: SystemTime) -> Result<u64, Error> {
        let created_ms = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let segment = self.next_segment;
        self.next_segment += 1;
        let path = self.dir.join(format!(
            "{created_ms:013}-{:016x}-{segment:06}.{EXTENSION}",
            self.writer_id
        ));
        let mut open = OpenOptions::new();
        open.create_new(true).append(true).read(true);
        // Buffered events are the application's data: readable by this user only.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
        let file = open.open(&path).map_err(|source| Error::Disk {
            path: path.clone(),
            source,
        })?;
        // Fresh file with a unique name: only a broken filesystem makes this fail.
        file.try_lock().map_err(|e| Error::Disk {
            path: path.clone(),
            source: e.into(),
        })?;
        self.held.insert(
            segment,
            Held {
                path,
                file,
                bytes: 0,
                next_record: 0,
                outstanding: 0,
                parked: 0,
                sealed: false,
            },
        );
        self.active = Some(segment);
        Ok(segment)
    }

    /// Segment files with their sizes, oldest first.
    fn segment_paths(&self) -> Result<Vec<(PathBuf, u64)>, Error> {
        let entries = fs::read_dir(&self.dir).map_err(|source| Error::Disk {
            path: self.dir.clone(),
            source,
        })?;
        let mut paths: Vec<_> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == EXTENSION))
            .map(|e| (e.path(), e.metadata().map(|m| m.len()).unwrap_or(0)))
            .collect();
        paths.sort();
        Ok(paths)
    }
}

#[cfg(unix)]
fn still_linked(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.ino() == named.ino() && open.dev() == named.dev(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn still_linked(_file: &File, path: &Path) -> bool {
    // Windows refuses to delete a file another handle has open, so the name cannot have moved.
    path.exists()
}

/// Whether `name` is a segment file name as [`DiskBuffer::create_segment`] makes them:
/// `<created-ms>-<writer-id>-<n>.seg`.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) fn is_segment_file_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".seg") else {
        return false;
    };
    let parts: Vec<&str> = stem.split('-').collect();
    matches!(parts.as_slice(), [ms, writer, n]
        if !ms.is_empty() && ms.bytes().all(|b| b.is_ascii_digit())
            && writer.len() == 16 && writer.bytes().all(|b| b.is_ascii_hexdigit())
            && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn created_at(path: &Path) -> Option<SystemTime> {
    let name = path.file_name()?.to_str()?;
    let millis: u64 = name.split('-').next()?.parse().ok()?;
    Some(UNIX_EPOCH + Duration::from_millis(millis))
}

fn encode_record(out: &mut Vec<u8>, kind: u8, payload: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&MAGIC);
    out.push(kind);
    out.extend_from_slice(&[0; 8]);
    payload(out);
    let len = (out.len() - start - HEADER_LEN) as u32;
    out[start + 5..start + 9].copy_from_slice(&len.to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&out[start + 4..start + 9]);
    crc.update(&out[start + HEADER_LEN..]);
    out[start + 9..start + 13].copy_from_slice(&crc.finalize().to_le_bytes());
}

#[derive(Debug)]
struct BatchRecord {
    writer: u64,
    record: u64,
    batch: Batch,
}

#[derive(Debug, Default)]
struct Parsed {
    batches: Vec<BatchRecord>,
    acks: HashSet<u64>,
    corrupt_offsets: Vec<u64>,
}

fn parse_segment(data: &[u8]) -> Parsed {
    let mut parsed = Parsed::default();
    let mut offset = 0usize;
    while offset < data.len() {
        match parse_record(&data[offset..]) {
            Some((kind, payload, len)) if apply_record(&mut parsed, kind, payload) => offset += len,
            _ => {
                parsed.corrupt_offsets.push(offset as u64);
                // Resynchronize on the next record magic after the damage.
                match data[offset + 1..]
                    .windows(MAGIC.len())
                    .position(|w| w == MAGIC)
                {
                    Some(skip) => offset += 1 + skip,
                    None => break,
                }
            }
        }
    }
    parsed
}

/// `(kind, payload, total record length)` if the record at the start of `data` is intact.
fn parse_record(data: &[u8]) -> Option<(u8, &[u8], usize)> {
    let header = data.get(..HEADER_LEN)?;
    if header[..4] != MAGIC {
        return None;
    }
    let len = u32::from_le_bytes(header[5..9].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[9..13].try_into().ok()?);
    let payload = data.get(HEADER_LEN..HEADER_LEN + len)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header[4..9]);
    hasher.update(payload);
    (hasher.finalize() == crc).then_some((header[4], payload, HEADER_LEN + len))
}

fn apply_record(parsed: &mut Parsed, kind: u8, payload: &[u8]) -> bool {
    let u64_at = |at: usize| {
        payload
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    match kind {
        KIND_ACK => u64_at(0).map(|record| parsed.acks.insert(record)).is_some(),
        KIND_BATCH => {
            let (Some(writer), Some(batch_id), Some(record)) = (u64_at(0), u64_at(8), u64_at(16))
            else {
                return false;
            };
            let Some(count) = payload
                .get(24..28)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
            else {
                return false;
            };
            let ends_end = 28 + 4 * count as usize;
            let Some(ends_bytes) = payload.get(28..ends_end) else {
                return false;
            };
            let ends = ends_bytes
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            let joined = payload[ends_end..].to_vec();
            match Batch::from_parts(batch_id as BatchId, joined, ends) {
                Some(batch) => {
                    parsed.batches.push(BatchRecord {
                        writer,
                        record,
                        batch,
                    });
                    true
                }
                None => false,
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(id: u64, messages: &[&str]) -> Batch {
        let mut builder = crate::batch::BatchBuilder::new(100, usize::MAX);
        for m in messages {
            builder.push(m.as_bytes());
        }
        builder.seal(id).unwrap()
    }

    fn open(dir: &Path, writer: u64) -> DiskBuffer {
        DiskBuffer::open(
            dir.to_owned(),
            DiskBufferOptions::default(),
            writer,
            Arc::default(),
        )
        .unwrap()
    }

    fn now() -> SystemTime {
        SystemTime::now()
    }

    #[test]
    fn records_round_trip_and_acked_batches_are_not_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = open(dir.path(), 1);
        let a = writer
            .append(&batch(10, &["{\"a\":1}", "{\"a\":2}"]), now())
            .unwrap()
            .unwrap();
        let _b = writer
            .append(&batch(11, &["{\"b\":1}"]), now())
            .unwrap()
            .unwrap();
        writer.ack(a);
        // Simulate a crash: the writer's locks vanish without sealing or acking `b`.
        drop(writer);
        let mut reader = open(dir.path(), 2);
        let replayed = reader.claim_next(now()).unwrap().unwrap();
        assert_eq!(replayed.len(), 1);
        assert_eq!((replayed[0].writer, replayed[0].batch.id), (1, 11));
        assert_eq!(replayed[0].batch.message(0), b"{\"b\":1}");
        reader.ack(replayed[0].disk);
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "fully acked segment is deleted"
        );
    }

    #[test]
    fn a_held_segment_is_not_claimed_by_another_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let mut one = open(dir.path(), 1);
        let r = one.append(&batch(1, &["{}"]), now()).unwrap().unwrap();
        let mut two = open(dir.path(), 2);
        assert!(two.claim_next(now()).unwrap().is_none());
        one.park(r);
        one.seal_active();
        let replayed = two.claim_next(now()).unwrap().unwrap();
        assert_eq!(replayed.len(), 1);
        assert!(
            one.claim_next(now()).unwrap().is_none(),
            "now held by `two`"
        );
    }

    #[test]
    fn torn_tail_and_flipped_bytes_are_skipped_and_the_rest_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = open(dir.path(), 1);
        for id in 0..3 {
            writer
                .append(&batch(id, &["{\"x\":\"yyyyyyyy\"}"]), now())
                .unwrap();
        }
        drop(writer);
        let path = fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let mut data = fs::read(&path).unwrap();
        let record_len = data.len() / 3;
        data[record_len + HEADER_LEN + 30] ^= 0xff; // corrupt the middle record's payload
        data.extend_from_within(..record_len / 2); // a torn, half-written record
        fs::write(&path, &data).unwrap();
        let mut reader = open(dir.path(), 2);
        let replayed = reader.claim_next(now()).unwrap().unwrap();
        assert_eq!(
            replayed.iter().map(|r| r.batch.id).collect::<Vec<_>>(),
            vec![0, 2]
        );
        assert_eq!(reader.reporter.counters.snapshot().corrupt_records, 2);
    }

    #[test]
    fn expired_segments_are_deleted_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = open(dir.path(), 1);
        writer
            .append(
                &batch(0, &["{}", "{}"]),
                now() - Duration::from_secs(8 * 24 * 3600),
            )
            .unwrap();
        drop(writer);
        let mut reader = open(dir.path(), 2);
        assert!(reader.claim_next(now()).unwrap().is_none());
        assert_eq!(reader.reporter.counters.snapshot().dropped.expired, 2);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn byte_bound_refuses_appends() {
        let dir = tempfile::tempdir().unwrap();
        let options = DiskBufferOptions {
            max_bytes: 200,
            ..DiskBufferOptions::default()
        };
        let mut buffer =
            DiskBuffer::open(dir.path().to_owned(), options, 1, Arc::default()).unwrap();
        let big = "x".repeat(150);
        assert!(buffer.append(&batch(0, &[&big]), now()).unwrap().is_some());
        assert!(buffer.append(&batch(1, &[&big]), now()).unwrap().is_none());
    }

    #[test]
    fn segments_rotate_at_their_size_and_are_replayed_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let options = DiskBufferOptions {
            segment_bytes: 100,
            ..DiskBufferOptions::default()
        };
        let mut writer =
            DiskBuffer::open(dir.path().to_owned(), options, 1, Arc::default()).unwrap();
        let payload = format!("{{\"p\":\"{}\"}}", "z".repeat(80));
        for id in 0..3 {
            writer.append(&batch(id, &[&payload]), now()).unwrap();
        }
        drop(writer);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 3);
        let mut reader = open(dir.path(), 2);
        let ids: Vec<_> = std::iter::from_fn(|| reader.claim_next(now()).unwrap())
            .map(|r| r[0].batch.id)
            .collect();
        assert_eq!(ids, vec![0, 1, 2]);
    }
}

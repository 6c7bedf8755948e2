//! POWER CUT at the block layer: a disk with a volatile write cache, served
//! to QEMU over NBD on loopback.
//!
//! The server keeps two images of the disk: what the guest sees (every
//! write applied) and what is stable (only what a flush covered). A write
//! is acknowledged at once and lands in the cache; `NBD_CMD_FLUSH` makes
//! every write acknowledged before it stable. At the cut (QEMU killed),
//! the stable image is what the disk holds: every write acknowledged after
//! the last flush is lost, the way a drive with a volatile cache loses it
//! when the power goes, and ext4 and SQLite have only their flushes to rely
//! on. No FUA is offered, so QEMU turns a FUA write into a write and a
//! flush.
//!
//! The protocol is the fixed newstyle handshake with `NBD_OPT_GO` (or the
//! old `NBD_OPT_EXPORT_NAME`), and simple replies to `READ`, `WRITE`,
//! `FLUSH` and `DISC` (the NBD protocol document, `doc/proto.md` of
//! NetworkBlockDevice/nbd). Everything else is refused.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const NBDMAGIC: u64 = 0x4e42_444d_4147_4943;
const IHAVEOPT: u64 = 0x4948_4156_454F_5054;
const OPT_REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
const REQUEST_MAGIC: u32 = 0x2560_9513;
const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;
const FLAG_FIXED_NEWSTYLE: u16 = 1;
const FLAG_NO_ZEROES: u16 = 2;
const OPT_EXPORT_NAME: u32 = 1;
const OPT_ABORT: u32 = 2;
const OPT_INFO: u32 = 6;
const OPT_GO: u32 = 7;
const REP_ACK: u32 = 1;
const REP_INFO: u32 = 3;
const REP_ERR_UNSUP: u32 = 0x8000_0001;
const INFO_EXPORT: u16 = 0;
const TX_HAS_FLAGS: u16 = 1;
const TX_SEND_FLUSH: u16 = 4;
const CMD_READ: u16 = 0;
const CMD_WRITE: u16 = 1;
const CMD_DISC: u16 = 2;
const CMD_FLUSH: u16 = 3;
const EINVAL: u32 = 22;

/// How often the accept loop looks for a stop: 20 ms.
const ACCEPT_POLL: Duration = Duration::from_millis(20);

/// The disk and its cache.
#[derive(Debug)]
struct CacheDisk {
    /// What the guest reads: every write applied.
    live: Vec<u8>,
    /// What survives a power cut: the writes a flush covered.
    stable: Vec<u8>,
    /// Writes since the last flush: (offset, length).
    pending: Vec<(usize, usize)>,
    flushes: u64,
    writes: u64,
}

impl CacheDisk {
    fn flush(&mut self) {
        for (at, len) in self.pending.drain(..) {
            self.stable[at..at + len].copy_from_slice(&self.live[at..at + len]);
        }
        self.flushes += 1;
    }
}

/// What the cut took.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Cut {
    /// Writes acknowledged after the last flush, lost at the cut.
    pub(crate) lost_writes: u64,
    /// Flushes the disk served.
    pub(crate) flushes: u64,
    /// Writes the disk served.
    pub(crate) writes: u64,
}

/// An NBD server of one disk image with a volatile write cache, on
/// 127.0.0.1.
pub(crate) struct VolatileDisk {
    port: u16,
    disk: Arc<Mutex<CacheDisk>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl VolatileDisk {
    /// Serves `image` (read into memory) to one client.
    pub(crate) fn serve(image: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(image).map_err(|e| format!("{}: {e}", image.display()))?;
        let disk = Arc::new(Mutex::new(CacheDisk {
            stable: bytes.clone(),
            live: bytes,
            pending: Vec::new(),
            flushes: 0,
            writes: 0,
        }));
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("nbd bind: {e}"))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (disk, stop) = (Arc::clone(&disk), Arc::clone(&stop));
            std::thread::spawn(move || {
                let stream = loop {
                    match listener.accept() {
                        Ok((stream, _)) => break stream,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            if stop.load(Ordering::SeqCst) {
                                return Ok(());
                            }
                            std::thread::sleep(ACCEPT_POLL);
                        }
                        Err(e) => return Err(format!("nbd accept: {e}")),
                    }
                };
                stream.set_nonblocking(false).map_err(|e| e.to_string())?;
                stream.set_nodelay(true).map_err(|e| e.to_string())?;
                session(stream, &disk)
            })
        };
        Ok(Self {
            port,
            disk,
            stop,
            thread: Some(thread),
        })
    }

    /// The `-drive` argument that makes QEMU use this disk.
    pub(crate) fn drive(&self) -> String {
        format!(
            "file=nbd://127.0.0.1:{}/data,format=raw,if=virtio",
            self.port
        )
    }

    /// Whether the cache holds writes that no flush has covered yet.
    pub(crate) fn holds_unflushed_writes(&self) -> bool {
        self.disk.lock().is_ok_and(|d| !d.pending.is_empty())
    }

    /// The power goes: call once QEMU is dead. Writes what the disk holds
    /// (the stable image) to `image`.
    pub(crate) fn cut(mut self, image: &Path) -> Result<Cut, String> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            // The client is gone: the session ends on its closed socket.
            match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err("the nbd server panicked".to_owned()),
            }
        }
        let disk = self.disk.lock().map_err(|_| "nbd disk poisoned")?;
        std::fs::write(image, &disk.stable).map_err(|e| format!("{}: {e}", image.display()))?;
        Ok(Cut {
            lost_writes: disk.pending.len() as u64,
            flushes: disk.flushes,
            writes: disk.writes,
        })
    }
}

fn read_u16(s: &mut TcpStream) -> std::io::Result<u16> {
    let mut b = [0; 2];
    s.read_exact(&mut b)?;
    Ok(u16::from_be_bytes(b))
}

fn read_u32(s: &mut TcpStream) -> std::io::Result<u32> {
    let mut b = [0; 4];
    s.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

fn read_u64(s: &mut TcpStream) -> std::io::Result<u64> {
    let mut b = [0; 8];
    s.read_exact(&mut b)?;
    Ok(u64::from_be_bytes(b))
}

fn option_reply(s: &mut TcpStream, option: u32, kind: u32, data: &[u8]) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(20 + data.len());
    out.extend_from_slice(&OPT_REPLY_MAGIC.to_be_bytes());
    out.extend_from_slice(&option.to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    s.write_all(&out)
}

/// One client: the handshake, then requests until it disconnects. A closed
/// socket (QEMU killed) ends the session without error.
fn session(mut s: TcpStream, disk: &Mutex<CacheDisk>) -> Result<(), String> {
    let size = disk.lock().map_err(|_| "poisoned")?.live.len() as u64;
    let tx_flags = TX_HAS_FLAGS | TX_SEND_FLUSH;
    let closed = |e: &std::io::Error| {
        matches!(
            e.kind(),
            std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::BrokenPipe
        )
    };
    let handshake = (|| -> std::io::Result<bool> {
        let mut hello = Vec::new();
        hello.extend_from_slice(&NBDMAGIC.to_be_bytes());
        hello.extend_from_slice(&IHAVEOPT.to_be_bytes());
        hello.extend_from_slice(&(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES).to_be_bytes());
        s.write_all(&hello)?;
        let client_flags = read_u32(&mut s)?;
        loop {
            if read_u64(&mut s)? != IHAVEOPT {
                return Err(std::io::Error::other("bad option magic"));
            }
            let option = read_u32(&mut s)?;
            let len = read_u32(&mut s)? as usize;
            let mut data = vec![0; len];
            s.read_exact(&mut data)?;
            match option {
                OPT_EXPORT_NAME => {
                    let mut out = Vec::new();
                    out.extend_from_slice(&size.to_be_bytes());
                    out.extend_from_slice(&tx_flags.to_be_bytes());
                    if client_flags & u32::from(FLAG_NO_ZEROES) == 0 {
                        out.extend_from_slice(&[0; 124]);
                    }
                    s.write_all(&out)?;
                    return Ok(true);
                }
                OPT_INFO | OPT_GO => {
                    let mut info = Vec::new();
                    info.extend_from_slice(&INFO_EXPORT.to_be_bytes());
                    info.extend_from_slice(&size.to_be_bytes());
                    info.extend_from_slice(&tx_flags.to_be_bytes());
                    option_reply(&mut s, option, REP_INFO, &info)?;
                    option_reply(&mut s, option, REP_ACK, &[])?;
                    if option == OPT_GO {
                        return Ok(true);
                    }
                }
                OPT_ABORT => {
                    option_reply(&mut s, option, REP_ACK, &[])?;
                    return Ok(false);
                }
                _ => option_reply(&mut s, option, REP_ERR_UNSUP, &[])?,
            }
        }
    })();
    match handshake {
        Ok(true) => {}
        Ok(false) => return Ok(()),
        Err(e) if closed(&e) => return Ok(()),
        Err(e) => return Err(format!("nbd handshake: {e}")),
    }
    loop {
        match request(&mut s, disk) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) if closed(&e) => return Ok(()),
            Err(e) => return Err(format!("nbd: {e}")),
        }
    }
}

/// Serves one request; `false` after a disconnect.
fn request(s: &mut TcpStream, disk: &Mutex<CacheDisk>) -> std::io::Result<bool> {
    if read_u32(s)? != REQUEST_MAGIC {
        return Err(std::io::Error::other("bad request magic"));
    }
    let _flags = read_u16(s)?;
    let kind = read_u16(s)?;
    let cookie = read_u64(s)?;
    let offset = read_u64(s)? as usize;
    let len = read_u32(s)? as usize;
    let mut payload = Vec::new();
    if kind == CMD_WRITE {
        payload = vec![0; len];
        s.read_exact(&mut payload)?;
    }
    let mut disk = disk.lock().map_err(|_| std::io::Error::other("poisoned"))?;
    let in_range = offset
        .checked_add(len)
        .is_some_and(|end| end <= disk.live.len());
    let (error, data) = match kind {
        CMD_READ if in_range => (0, disk.live[offset..offset + len].to_vec()),
        CMD_WRITE if in_range => {
            disk.live[offset..offset + len].copy_from_slice(&payload);
            disk.pending.push((offset, len));
            disk.writes += 1;
            (0, Vec::new())
        }
        CMD_FLUSH => {
            disk.flush();
            (0, Vec::new())
        }
        CMD_DISC => return Ok(false),
        _ => (EINVAL, Vec::new()),
    };
    drop(disk);
    let mut out = Vec::with_capacity(16 + data.len());
    out.extend_from_slice(&SIMPLE_REPLY_MAGIC.to_be_bytes());
    out.extend_from_slice(&error.to_be_bytes());
    out.extend_from_slice(&cookie.to_be_bytes());
    out.extend_from_slice(&data);
    s.write_all(&out)?;
    Ok(true)
}

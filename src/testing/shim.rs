//! The FFI half of the power-loss VFS: a `sqlite3_vfs` that wraps SQLite's
//! default VFS and reports every mutating file operation to the model.
//!
//! Layout: each file object SQLite allocates for us is `szOsFile` bytes, a
//! [`ShimFile`] header (which starts with the `sqlite3_file` SQLite sees)
//! followed inline by the real VFS's file object. Every method forwards to
//! the real file, calling the real VFS's methods with the real VFS pointer
//! (the unix VFS reads its own `pAppData`).
//!
//! Lifetime rule: the `sqlite3_vfs` record and its [`Shared`] state are
//! leaked on purpose. SQLite keeps raw pointers to both in every connection
//! (and may open a WAL or temp file through them long after the
//! registration), so freeing them while a connection lives would be a
//! use-after-free. Unregistering only hides the name from new opens.

// This is the one module of the workspace that talks to SQLite's C API
// directly; every `unsafe` block below carries a `// SAFETY:` comment.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::mem::{align_of, size_of};
use std::path::PathBuf;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::ffi;

use super::model::{Io, State, Verdict, WAL_CKPT_LOCK_SLOT};
use super::{FileKind, Lane, VfsOptions};
use crate::Error;

/// An action to run once, right after the next successful open of a
/// `kind` file from `lane` ([`super::PowerLossVfs::after_next_open`]).
pub(super) struct AfterOpen {
    pub(super) lane: Lane,
    pub(super) kind: FileKind,
    pub(super) action: Box<dyn FnOnce() + Send>,
}

/// Everything a registration owns. Leaked: see the module docs.
pub(super) struct Shared {
    real: RealVfs,
    name: CString,
    options: VfsOptions,
    state: Mutex<State>,
    after_open: Mutex<Option<AfterOpen>>,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the model half
        // updated in a way that matters more than the panic itself.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn name(&self) -> &CStr {
        &self.name
    }

    pub(super) fn set_after_open(&self, after: AfterOpen) {
        *self
            .after_open
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(after);
    }

    /// The armed action, taken, if it is for an open of `kind` from `lane`.
    fn take_after_open(&self, lane: Lane, kind: FileKind) -> Option<Box<dyn FnOnce() + Send>> {
        let mut armed = self
            .after_open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if armed
            .as_ref()
            .is_some_and(|a| a.lane == lane && a.kind == kind)
        {
            armed.take().map(|a| a.action)
        } else {
            None
        }
    }
}

/// The real (default) VFS.
struct RealVfs(*mut ffi::sqlite3_vfs);

// SAFETY: the pointer designates SQLite's default VFS record, a static object
// that SQLite itself shares between all threads (it is built thread-safe, as
// rusqlite checks at open). We only read it and call its methods, which are
// thread-safe by SQLite's VFS contract.
unsafe impl Send for RealVfs {}
// SAFETY: as for `Send`: shared read-only use of a thread-safe static record.
unsafe impl Sync for RealVfs {}

/// Our registered `sqlite3_vfs` record.
pub(super) struct Registration(*mut ffi::sqlite3_vfs);

// SAFETY: the record is leaked (never freed) and after registration only
// SQLite touches it (its `pNext` link, under SQLite's own mutex).
unsafe impl Send for Registration {}
// SAFETY: see `Send`; we only pass the pointer to `sqlite3_vfs_unregister`.
unsafe impl Sync for Registration {}

impl Registration {
    /// Removes the name from SQLite's VFS list: no new connection can use it.
    /// Existing connections keep working, since nothing is freed.
    pub(super) fn unregister(&self) {
        // SAFETY: `self.0` points to a leaked, registered `sqlite3_vfs`;
        // unregistering a registered VFS is always allowed, and SQLite does
        // not free the record.
        unsafe {
            ffi::sqlite3_vfs_unregister(self.0);
        }
    }
}

/// The header of every file object we hand out.
#[repr(C)]
struct ShimFile {
    /// What SQLite sees: must come first.
    base: ffi::sqlite3_file,
    shared: &'static Shared,
    /// The modelled path, `None` for files the model ignores (temp files).
    path: Option<PathBuf>,
    /// This handle holds the WAL checkpoint lock.
    holds_checkpoint_lock: bool,
    /// The lane of the thread that opened it: a connection's files are
    /// used from its own thread (phase 1's stays on phase 1's thread).
    lane: Lane,
}

// The real file object starts right after our header: keep it aligned.
const _: () = assert!(size_of::<ShimFile>().is_multiple_of(align_of::<ffi::sqlite3_file>()));
const _: () = assert!(align_of::<ShimFile>() >= align_of::<ffi::sqlite3_file>());

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Registers a new shim over the default VFS under a unique name.
pub(super) fn register(options: VfsOptions) -> Result<(&'static Shared, Registration), Error> {
    // SAFETY: `sqlite3_vfs_find(NULL)` initializes SQLite if needed and
    // returns the default VFS or null; it has no other precondition.
    let real = unsafe { ffi::sqlite3_vfs_find(ptr::null()) };
    if real.is_null() {
        return Err(crate::testing::VfsError::NoDefault.into());
    }
    // SAFETY: `real` is non-null and points to a registered VFS record, which
    // SQLite never frees; we only read plain fields.
    let (real_version, real_size, max_path) =
        unsafe { ((*real).iVersion, (*real).szOsFile, (*real).mxPathname) };
    let header =
        c_int::try_from(size_of::<ShimFile>()).map_err(|_| crate::testing::VfsError::NoDefault)?;
    let name = format!(
        "walguard-power-loss-{}-{}",
        std::process::id(),
        NEXT_ID.fetch_add(1, Ordering::Relaxed)
    );
    let name = CString::new(name.clone())
        .map_err(|_| crate::testing::VfsError::Register { name, code: 0 })?;
    let shared: &'static Shared = Box::leak(Box::new(Shared {
        real: RealVfs(real),
        name,
        options,
        state: Mutex::new(State::default()),
        after_open: Mutex::new(None),
    }));
    let vfs: &'static mut ffi::sqlite3_vfs = Box::leak(Box::new(ffi::sqlite3_vfs {
        // Version 2 is all we forward (no system-call overrides).
        iVersion: real_version.min(2),
        szOsFile: header.saturating_add(real_size),
        mxPathname: max_path,
        pNext: ptr::null_mut(),
        zName: shared.name.as_ptr(),
        pAppData: ptr::from_ref(shared).cast_mut().cast::<c_void>(),
        xOpen: Some(x_open),
        xDelete: Some(x_delete),
        xAccess: Some(x_access),
        xFullPathname: Some(x_full_pathname),
        xDlOpen: Some(x_dl_open),
        xDlError: Some(x_dl_error),
        xDlSym: Some(x_dl_sym),
        xDlClose: Some(x_dl_close),
        xRandomness: Some(x_randomness),
        xSleep: Some(x_sleep),
        xCurrentTime: Some(x_current_time),
        xGetLastError: Some(x_get_last_error),
        xCurrentTimeInt64: Some(x_current_time_int64),
        xSetSystemCall: None,
        xGetSystemCall: None,
        xNextSystemCall: None,
    }));
    let vfs = ptr::from_mut(vfs);
    // SAFETY: `vfs` is a fully initialized record that lives forever (leaked)
    // with a unique, NUL-terminated name that also lives forever.
    let rc = unsafe { ffi::sqlite3_vfs_register(vfs, 0) };
    if rc != ffi::SQLITE_OK {
        return Err(crate::testing::VfsError::Register {
            name: shared.name.to_string_lossy().into_owned(),
            code: rc,
        }
        .into());
    }
    Ok((shared, Registration(vfs)))
}

/// The state behind a VFS pointer SQLite hands us.
///
/// # Safety
/// `vfs` must be one of our records (its `pAppData` a leaked `Shared`).
unsafe fn shared_of(vfs: *mut ffi::sqlite3_vfs) -> &'static Shared {
    // SAFETY: per the contract, `pAppData` was set by `register` to a leaked
    // `Shared`, which is valid (and never mutably aliased) forever.
    unsafe { &*(*vfs).pAppData.cast::<Shared>() }
}

/// The real file object that lives right after our header.
///
/// # Safety
/// `file` must point to an allocation of our `szOsFile` bytes.
unsafe fn real_file(file: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    // SAFETY: the allocation is `size_of::<ShimFile>() + real.szOsFile` bytes,
    // so the offset stays inside it; alignment is asserted at compile time.
    unsafe { file.cast::<u8>().add(size_of::<ShimFile>()).cast() }
}

/// Our header of an open file.
///
/// # Safety
/// `file` must be a file that our `x_open` opened successfully and that is
/// not closed yet (SQLite only calls methods on such files).
unsafe fn header<'a>(file: *mut ffi::sqlite3_file) -> &'a ShimFile {
    // SAFETY: `x_open` wrote a valid `ShimFile` at the start of the object;
    // it stays valid until `x_close` drops it.
    unsafe { &*file.cast::<ShimFile>() }
}

/// The real file's method table, if it has one.
///
/// # Safety
/// As for [`header`].
unsafe fn real_methods<'a>(
    file: *mut ffi::sqlite3_file,
) -> Option<(&'a ffi::sqlite3_io_methods, *mut ffi::sqlite3_file)> {
    // SAFETY: the file is open, so the real file object was initialized by
    // the real `xOpen`; its `pMethods` is null or a static method table.
    unsafe {
        let real = real_file(file);
        (*real).pMethods.as_ref().map(|methods| (methods, real))
    }
}

/// Forwards one io method call to the real file; `SQLITE_IOERR` if the real
/// file lacks the method.
macro_rules! forward {
    ($file:expr, $method:ident $(, $arg:expr)*) => {{
        // SAFETY: callers are io methods SQLite invokes on an open file of
        // ours; the real file is open and its method takes these arguments.
        unsafe {
            match real_methods($file) {
                Some((methods, real)) => match methods.$method {
                    Some(f) => f(real $(, $arg)*),
                    None => ffi::SQLITE_IOERR,
                },
                None => ffi::SQLITE_IOERR,
            }
        }
    }};
}

fn kind_from_flags(flags: c_int) -> Option<FileKind> {
    if flags & ffi::SQLITE_OPEN_MAIN_DB != 0 {
        Some(FileKind::MainDb)
    } else if flags & ffi::SQLITE_OPEN_WAL != 0 {
        Some(FileKind::Wal)
    } else if flags & (ffi::SQLITE_OPEN_MAIN_JOURNAL | ffi::SQLITE_OPEN_SUPER_JOURNAL) != 0 {
        Some(FileKind::Journal)
    } else {
        None
    }
}

fn path_from_c(name: &CStr) -> PathBuf {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        PathBuf::from(std::ffi::OsStr::from_bytes(name.to_bytes()))
    }
    #[cfg(not(unix))]
    {
        PathBuf::from(name.to_string_lossy().into_owned())
    }
}

// ---------------------------------------------------------------------------
// VFS methods
// ---------------------------------------------------------------------------

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite calls xOpen with our VFS record.
    let shared = unsafe { shared_of(vfs) };
    let real = shared.real.0;
    let path = if name.is_null() {
        None
    } else {
        // SAFETY: a non-null name is a NUL-terminated string valid for the
        // life of the file (sqlite3_vfs docs).
        Some(path_from_c(unsafe { CStr::from_ptr(name) }))
    };
    let lane = Lane::current();
    if let Some(code) = kind_from_flags(flags).and_then(|kind| shared.lock().take_open_fault(kind))
    {
        // SAFETY: `file` points to writable memory SQLite allocated for
        // this open; a failed xOpen must leave `pMethods` null, so that
        // SQLite calls no method of it.
        unsafe { (*file).pMethods = ptr::null() };
        return code;
    }
    let path = match (kind_from_flags(flags), path) {
        (Some(kind), Some(path)) => {
            let mut state = shared.lock();
            state.opening(&path, kind, flags & ffi::SQLITE_OPEN_CREATE != 0);
            state.lane_handle(lane, true);
            Some(path)
        }
        _ => None,
    };
    // SAFETY: `file` points to `szOsFile` writable bytes, suitably aligned,
    // that SQLite allocated for this open; we initialize our header, then
    // zero the real part so its `pMethods` reads as null if the real open
    // fails early.
    unsafe {
        ptr::write(
            file.cast::<ShimFile>(),
            ShimFile {
                base: ffi::sqlite3_file {
                    pMethods: ptr::null(),
                },
                shared,
                path,
                holds_checkpoint_lock: false,
                lane,
            },
        );
        let real_size = usize::try_from((*real).szOsFile).unwrap_or(0);
        ptr::write_bytes(real_file(file).cast::<u8>(), 0, real_size);
    }
    // SAFETY: calling the real xOpen with the real VFS pointer, the same name
    // and flags, and the real file object (sized `real.szOsFile`).
    let rc = unsafe {
        match (*real).xOpen {
            Some(open) => open(real, name, real_file(file), flags, out_flags),
            None => ffi::SQLITE_CANTOPEN,
        }
    };
    // SAFETY: the header was written above; the real file's `pMethods` is
    // null or a valid static table after the real xOpen returned.
    unsafe {
        if rc != ffi::SQLITE_OK {
            // SQLite will not call xClose: undo our half of the open.
            if let Some(path) = &header(file).path {
                let mut state = shared.lock();
                state.closed(path);
                state.lane_handle(lane, false);
            }
            ptr::drop_in_place(file.cast::<ShimFile>());
            (*file).pMethods = ptr::null();
            return rc;
        }
        let version = (*real_file(file))
            .pMethods
            .as_ref()
            .map_or(1, |m| m.iVersion);
        (*file).pMethods = match version {
            ..=1 => &raw const METHODS_V1,
            2 => &raw const METHODS_V2,
            _ => &raw const METHODS_V3,
        };
    }
    if let Some(action) = kind_from_flags(flags).and_then(|kind| shared.take_after_open(lane, kind))
    {
        action();
    }
    rc
}

unsafe extern "C" fn x_delete(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    // SAFETY: SQLite calls xDelete with our VFS record.
    let shared = unsafe { shared_of(vfs) };
    let real = shared.real.0;
    let path = if name.is_null() {
        None
    } else {
        // SAFETY: a non-null name is a NUL-terminated string.
        Some(path_from_c(unsafe { CStr::from_ptr(name) }))
    };
    let sync_dir_real = if shared.options.real_sync {
        sync_dir
    } else {
        0
    };
    // SAFETY: forwarding to the real xDelete with the real VFS pointer.
    let call = || unsafe {
        match (*real).xDelete {
            Some(delete) => delete(real, name, sync_dir_real),
            None => ffi::SQLITE_IOERR_DELETE,
        }
    };
    let Some(path) = path else {
        return call();
    };
    let mut state = shared.lock();
    if state.kind_of(&path).is_none() {
        drop(state);
        return call();
    }
    if let Verdict::Fail(code) = state.begin(&path, Io::Delete, Lane::current()) {
        return code;
    }
    let rc = call();
    if rc == ffi::SQLITE_OK {
        state.deleted(&path, sync_dir != 0);
    }
    rc
}

unsafe extern "C" fn x_access(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    // SAFETY: forwarding unchanged arguments to the real VFS.
    unsafe {
        let real = shared_of(vfs).real.0;
        match (*real).xAccess {
            Some(f) => f(real, name, flags, out),
            None => ffi::SQLITE_IOERR_ACCESS,
        }
    }
}

unsafe extern "C" fn x_full_pathname(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    n_out: c_int,
    out: *mut c_char,
) -> c_int {
    // SAFETY: forwarding unchanged arguments to the real VFS.
    unsafe {
        let real = shared_of(vfs).real.0;
        match (*real).xFullPathname {
            Some(f) => f(real, name, n_out, out),
            None => ffi::SQLITE_CANTOPEN,
        }
    }
}

unsafe extern "C" fn x_dl_open(vfs: *mut ffi::sqlite3_vfs, name: *const c_char) -> *mut c_void {
    // SAFETY: forwarding unchanged arguments to the real VFS.
    unsafe {
        let real = shared_of(vfs).real.0;
        match (*real).xDlOpen {
            Some(f) => f(real, name),
            None => ptr::null_mut(),
        }
    }
}

unsafe extern "C" fn x_dl_error(vfs: *mut ffi::sqlite3_vfs, n: c_int, msg: *mut c_char) {
    // SAFETY: forwarding unchanged arguments to the real VFS.
    unsafe {
        let real = shared_of(vfs).real.0;
        if let Some(f) = (*real).xDlError {
            f(real, n, msg);
        }
    }
}

type DlSym = unsafe extern "C" fn(*mut ffi::sqlite3_vfs, *mut c_void, *const c_char);

unsafe extern "C" fn x_dl_sym(
    vfs: *mut ffi::sqlite3_vfs,
    handle: *mut c_void,
    symbol: *const c_char,
) -> Option<DlSym> {
    // SAFETY: forwarding unchanged arguments to the real VFS.
    unsafe {
        let real = shared_of(vfs).real.0;
        match (*real).xDlSym {
            Some(f) => f(real, handle, symbol),
            None => None,
        }
    }
}

unsafe extern "C" fn x_dl_close(vfs: *mut ffi::sqlite3_vfs, handle: *mut c_void) {
    // SAFETY: forwarding unchanged arguments to the real VFS.
    unsafe {
        let real = shared_of(vfs).real.0;
        if let Some(f) = (*real).xDlClose {
            f(real, handle);
        }
    }
}

unsafe extern "C" fn x_randomness(vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) -> c_int {
    // SAFETY: forwarding unchanged arguments to the real VFS.
    unsafe {
        let real = shared_of(vfs).real.0;
        match (*real).xRandomness {
            Some(f) => f(real, n, out),
            None => 0,
        }
    }
}

unsafe extern "C" fn x_sleep(vfs: *mut ffi::sqlite3_vfs, micros: c_int) -> c_int {
    // SAFETY: forwarding unchanged arguments to the real VFS.
    unsafe {
        let real = shared_of(vfs).real.0;
        match (*real).xSleep {
            Some(f) => f(real, micros),
            None => 0,
        }
    }
}

unsafe extern "C" fn x_current_time(vfs: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    // SAFETY: forwarding unchanged arguments to the real VFS.
    unsafe {
        let real = shared_of(vfs).real.0;
        match (*real).xCurrentTime {
            Some(f) => f(real, out),
            None => ffi::SQLITE_ERROR,
        }
    }
}

unsafe extern "C" fn x_get_last_error(
    vfs: *mut ffi::sqlite3_vfs,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    // SAFETY: forwarding unchanged arguments to the real VFS.
    unsafe {
        let real = shared_of(vfs).real.0;
        match (*real).xGetLastError {
            Some(f) => f(real, n, out),
            None => 0,
        }
    }
}

unsafe extern "C" fn x_current_time_int64(
    vfs: *mut ffi::sqlite3_vfs,
    out: *mut ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: forwarding unchanged arguments to the real VFS; our record
    // advertises version 2 only if the real one has it (`iVersion.min(2)`).
    unsafe {
        let real = shared_of(vfs).real.0;
        match (*real).xCurrentTimeInt64 {
            Some(f) if (*real).iVersion >= 2 => f(real, out),
            _ => ffi::SQLITE_ERROR,
        }
    }
}

// ---------------------------------------------------------------------------
// File methods
// ---------------------------------------------------------------------------

const fn methods(version: c_int) -> ffi::sqlite3_io_methods {
    let v2 = version >= 2;
    let v3 = version >= 3;
    ffi::sqlite3_io_methods {
        iVersion: version,
        xClose: Some(f_close),
        xRead: Some(f_read),
        xWrite: Some(f_write),
        xTruncate: Some(f_truncate),
        xSync: Some(f_sync),
        xFileSize: Some(f_file_size),
        xLock: Some(f_lock),
        xUnlock: Some(f_unlock),
        xCheckReservedLock: Some(f_check_reserved_lock),
        xFileControl: Some(f_file_control),
        xSectorSize: Some(f_sector_size),
        xDeviceCharacteristics: Some(f_device_characteristics),
        xShmMap: if v2 { Some(f_shm_map) } else { None },
        xShmLock: if v2 { Some(f_shm_lock) } else { None },
        xShmBarrier: if v2 { Some(f_shm_barrier) } else { None },
        xShmUnmap: if v2 { Some(f_shm_unmap) } else { None },
        xFetch: if v3 { Some(f_fetch) } else { None },
        xUnfetch: if v3 { Some(f_unfetch) } else { None },
    }
}

static METHODS_V1: ffi::sqlite3_io_methods = methods(1);
static METHODS_V2: ffi::sqlite3_io_methods = methods(2);
static METHODS_V3: ffi::sqlite3_io_methods = methods(3);

unsafe extern "C" fn f_close(file: *mut ffi::sqlite3_file) -> c_int {
    let rc = forward!(file, xClose);
    // SAFETY: SQLite calls xClose once on a file we opened; after it, SQLite
    // never uses the object again, so dropping our header here is the end of
    // its life.
    unsafe {
        let head = header(file);
        if head.path.is_some() || head.holds_checkpoint_lock {
            let mut state = head.shared.lock();
            if head.holds_checkpoint_lock {
                state.checkpoint_lock(false, head.lane);
            }
            if let Some(path) = &head.path {
                state.closed(path);
                state.lane_handle(head.lane, false);
            }
        }
        ptr::drop_in_place(file.cast::<ShimFile>());
    }
    rc
}

unsafe extern "C" fn f_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    forward!(file, xRead, buf, amount, offset)
}

unsafe extern "C" fn f_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    // SAFETY: SQLite calls xWrite on an open file of ours.
    let head = unsafe { header(file) };
    let Some(path) = &head.path else {
        return forward!(file, xWrite, buf, amount, offset);
    };
    let (Ok(len), Ok(start)) = (usize::try_from(amount), u64::try_from(offset)) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    let mut state = head.shared.lock();
    if let Verdict::Fail(code) = state.begin(path, Io::Write, head.lane) {
        return code;
    }
    let rc = forward!(file, xWrite, buf, amount, offset);
    if rc == ffi::SQLITE_OK {
        // SAFETY: xWrite's buffer holds `amount` readable bytes; the real
        // write just read them.
        let data = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) };
        state.wrote(path, start, data);
    }
    rc
}

unsafe extern "C" fn f_truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    // SAFETY: SQLite calls xTruncate on an open file of ours.
    let head = unsafe { header(file) };
    let Some(path) = &head.path else {
        return forward!(file, xTruncate, size);
    };
    let Ok(new_size) = u64::try_from(size) else {
        return ffi::SQLITE_IOERR_TRUNCATE;
    };
    if usize::try_from(new_size).is_err() {
        return ffi::SQLITE_IOERR_TRUNCATE;
    }
    let mut state = head.shared.lock();
    if let Verdict::Fail(code) = state.begin(path, Io::Truncate, head.lane) {
        return code;
    }
    let rc = forward!(file, xTruncate, size);
    if rc == ffi::SQLITE_OK {
        state.truncated(path, new_size);
    }
    rc
}

unsafe extern "C" fn f_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: SQLite calls xSync on an open file of ours.
    let head = unsafe { header(file) };
    let Some(path) = &head.path else {
        return if head.shared.options.real_sync {
            forward!(file, xSync, flags)
        } else {
            ffi::SQLITE_OK
        };
    };
    let mut state = head.shared.lock();
    if let Verdict::Fail(code) = state.begin(path, Io::Sync, head.lane) {
        return code;
    }
    let rc = if head.shared.options.real_sync {
        forward!(file, xSync, flags)
    } else {
        ffi::SQLITE_OK
    };
    if rc == ffi::SQLITE_OK {
        state.synced(path);
    } else {
        // A real fsync failed: Linux forgets the dirty pages.
        state.sync_failed(path);
    }
    rc
}

unsafe extern "C" fn f_file_size(
    file: *mut ffi::sqlite3_file,
    out: *mut ffi::sqlite3_int64,
) -> c_int {
    forward!(file, xFileSize, out)
}

unsafe extern "C" fn f_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    forward!(file, xLock, level)
}

unsafe extern "C" fn f_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    forward!(file, xUnlock, level)
}

unsafe extern "C" fn f_check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    forward!(file, xCheckReservedLock, out)
}

unsafe extern "C" fn f_file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    forward!(file, xFileControl, op, arg)
}

unsafe extern "C" fn f_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls xSectorSize on an open file of ours.
    unsafe {
        match real_methods(file) {
            Some((methods, real)) => methods.xSectorSize.map_or(4096, |f| f(real)),
            None => 4096,
        }
    }
}

unsafe extern "C" fn f_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls xDeviceCharacteristics on an open file of ours.
    unsafe {
        match real_methods(file) {
            Some((methods, real)) => methods.xDeviceCharacteristics.map_or(0, |f| f(real)),
            None => 0,
        }
    }
}

unsafe extern "C" fn f_shm_map(
    file: *mut ffi::sqlite3_file,
    page: c_int,
    page_size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    forward!(file, xShmMap, page, page_size, extend, out)
}

unsafe extern "C" fn f_shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    let rc = forward!(file, xShmLock, offset, n, flags);
    if rc == ffi::SQLITE_OK && offset == WAL_CKPT_LOCK_SLOT && n == 1 {
        let exclusive_lock = ffi::SQLITE_SHM_LOCK | ffi::SQLITE_SHM_EXCLUSIVE;
        let exclusive_unlock = ffi::SQLITE_SHM_UNLOCK | ffi::SQLITE_SHM_EXCLUSIVE;
        let file_header = file.cast::<ShimFile>();
        // SAFETY: SQLite calls xShmLock on an open file of ours, from the one
        // thread that uses this connection; no reference to the header is
        // alive across this write.
        unsafe {
            let holds = (*file_header).holds_checkpoint_lock;
            let lane = (*file_header).lane;
            if flags == exclusive_lock && !holds {
                (*file_header).holds_checkpoint_lock = true;
                (*file_header).shared.lock().checkpoint_lock(true, lane);
            } else if flags == exclusive_unlock && holds {
                (*file_header).holds_checkpoint_lock = false;
                (*file_header).shared.lock().checkpoint_lock(false, lane);
            }
        }
    }
    rc
}

unsafe extern "C" fn f_shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: SQLite calls xShmBarrier on an open file of ours.
    unsafe {
        if let Some((methods, real)) = real_methods(file)
            && let Some(f) = methods.xShmBarrier
        {
            f(real);
        }
    }
}

unsafe extern "C" fn f_shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    forward!(file, xShmUnmap, delete)
}

unsafe extern "C" fn f_fetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    amount: c_int,
    out: *mut *mut c_void,
) -> c_int {
    forward!(file, xFetch, offset, amount, out)
}

unsafe extern "C" fn f_unfetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    p: *mut c_void,
) -> c_int {
    forward!(file, xUnfetch, offset, p)
}

//! Errno text for messages that say what failed and why: `EPERM (Operation not permitted)`.

use std::io;

use nix::errno::Errno;

/// Linux's kernel-internal ENOTSUPP (include/linux/errno.h), which BPF leaks to userspace.
pub const ENOTSUPP: i32 = 524;

/// `EPERM (Operation not permitted)`-style text for an errno, ENOTSUPP (524) included.
pub fn errno_text(errno: i32) -> String {
    if errno == ENOTSUPP {
        return "ENOTSUPP (524, kernel-internal: operation not supported)".to_owned();
    }
    let e = Errno::from_raw(errno);
    format!("{e:?} ({})", e.desc())
}

/// [`errno_text`] of an I/O error's errno, or the error's own text when it carries none.
pub fn io_text(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => errno_text(n),
        None => e.to_string(),
    }
}

/// The calling thread's errno, read right after a libc call that failed (0 when none is set).
pub fn last_errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// An I/O error's errno as an [`Errno`], for typed matching; `EIO` when it carries none.
pub fn errno_of(err: &io::Error) -> Errno {
    Errno::from_raw(err.raw_os_error().unwrap_or(libc::EIO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_text_names_the_errno_and_its_meaning() {
        assert!(errno_text(ENOTSUPP).starts_with("ENOTSUPP"));
        assert_eq!(errno_text(libc::EPERM), "EPERM (Operation not permitted)");
        assert_eq!(
            io_text(&io::Error::from_raw_os_error(libc::ENOENT)),
            "ENOENT (No such file or directory)"
        );
        assert_eq!(io_text(&io::Error::other("short write")), "short write");
        assert_eq!(errno_of(&io::Error::from_raw_os_error(libc::EBUSY)), Errno::EBUSY);
        assert_eq!(errno_of(&io::Error::other("no errno")), Errno::EIO);
    }

    #[test]
    fn last_errno_reads_the_failed_call() {
        // SAFETY: close(2) of an fd that is never open fails with EBADF and touches nothing.
        let r = unsafe { libc::close(-1) };
        assert_eq!((r, last_errno()), (-1, libc::EBADF));
    }
}

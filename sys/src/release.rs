//! The running kernel's release (`uname`), and its `(major, minor)` for feature gates.

use nix::errno::Errno;

/// What `uname(2)` says of the running kernel and machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uname {
    /// Kernel release, `uname -r` (`utsname.release`), e.g. `6.1.0-28-amd64`.
    pub release: String,
    /// Kernel build version string, `uname -v` (`utsname.version`).
    pub version: String,
    /// Machine architecture, `uname -m` (`utsname.machine`).
    pub machine: String,
}

/// The running kernel's [`Uname`]; `Err` is the errno of a failed `uname(2)`.
pub fn uname() -> Result<Uname, Errno> {
    let u = nix::sys::utsname::uname()?;
    Ok(Uname {
        release: u.release().to_string_lossy().into_owned(),
        version: u.version().to_string_lossy().into_owned(),
        machine: u.machine().to_string_lossy().into_owned(),
    })
}

/// The running kernel's release (`uname -r`), empty when `uname(2)` fails.
pub fn kernel_release() -> String {
    uname().map(|u| u.release).unwrap_or_default()
}

/// `(major, minor)` of a kernel release string such as `"6.1.0-28-amd64"`. Pure.
pub fn parse_release(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_releases() {
        assert_eq!(parse_release("6.1.0-28-amd64"), Some((6, 1)));
        assert_eq!(parse_release("5.15.0"), Some((5, 15)));
        assert_eq!(parse_release("6.18"), Some((6, 18)));
        assert_eq!(parse_release("x"), None);
    }

    #[test]
    fn the_running_release_parses() {
        let u = uname().expect("uname");
        assert_eq!(kernel_release(), u.release);
        assert!(parse_release(&u.release).is_some_and(|v| v >= (2, 6)), "{}", u.release);
        assert!(!u.machine.is_empty());
    }
}

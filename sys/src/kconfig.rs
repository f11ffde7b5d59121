//! The running kernel's build configuration: which mechanisms it was built with, and how.
//!
//! Read from `/proc/config.gz` (CONFIG_IKCONFIG_PROC), else `/boot/config-<release>`.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::errno::io_text;

/// A kernel `.config` text and where it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelConfig {
    /// The file read: `/proc/config.gz` or `/boot/config-<release>`.
    pub source: String,
    /// Its text (decompressed).
    pub text: String,
}

impl KernelConfig {
    /// The values of `options` in this configuration (see [`parse_kernel_config`]).
    pub fn values(&self, options: &[&str]) -> Vec<(String, String)> {
        parse_kernel_config(&self.text, options)
    }
}

/// The running kernel's configuration (`release` is its `uname -r`); `Err` says why not.
///
/// `Err` says why neither `/proc/config.gz` nor `/boot/config-<release>` could be read.
/// Side-effect free.
pub fn read_kernel_config(release: &str) -> Result<KernelConfig, String> {
    let gz = "/proc/config.gz";
    let boot = format!("/boot/config-{release}");
    let gz_reason = if Path::new(gz).exists() {
        match read_gzip(gz) {
            Ok(text) => {
                return Ok(KernelConfig {
                    source: gz.to_owned(),
                    text,
                })
            }
            Err(r) => r,
        }
    } else {
        format!("{gz} absent (kernel built without CONFIG_IKCONFIG_PROC)")
    };
    match std::fs::read_to_string(&boot) {
        Ok(text) => Ok(KernelConfig { source: boot, text }),
        Err(e) => Err(format!("{gz_reason}; cannot read {boot}: {}", io_text(&e))),
    }
}

/// The text of a gzip file, by gzip(1): no decoder among this crate's dependencies.
fn read_gzip(path: &str) -> Result<String, String> {
    match Command::new("gzip")
        .arg("-dc")
        .arg(path)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
    {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(o) => Err(format!(
            "gzip -dc {path} failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run gzip to read {path}: {}", io_text(&e))),
    }
}

/// Values of `options` in a `.config` text: `y`, `m`, a value, `not set`, or `missing`.
///
/// `not set` is for `# CONFIG_X is not set`; `missing` when the option does not appear at all
/// (it does not exist in that kernel version, or depends on something disabled). Pure.
pub fn parse_kernel_config(text: &str, options: &[&str]) -> Vec<(String, String)> {
    options
        .iter()
        .map(|&opt| {
            let not_set = format!("# {opt} is not set");
            let value = text.lines().find_map(|l| {
                let l = l.trim();
                if l == not_set {
                    return Some("not set".to_owned());
                }
                l.strip_prefix(opt)
                    .and_then(|rest| rest.strip_prefix('='))
                    .map(|v| v.trim_matches('"').to_owned())
            });
            (opt.to_owned(), value.unwrap_or_else(|| "missing".to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_config_parsing() {
        let text =
            "CONFIG_BPF_LSM=y\n# CONFIG_SECURITY_LANDLOCK is not set\nCONFIG_BPF_JIT=m\nCONFIG_LSM=\"landlock,bpf\"\n";
        let got = parse_kernel_config(
            text,
            &[
                "CONFIG_BPF_LSM",
                "CONFIG_SECURITY_LANDLOCK",
                "CONFIG_BPF_JIT",
                "CONFIG_LSM",
                "CONFIG_BPF",
            ],
        );
        assert_eq!(
            got,
            vec![
                ("CONFIG_BPF_LSM".into(), "y".into()),
                ("CONFIG_SECURITY_LANDLOCK".into(), "not set".into()),
                ("CONFIG_BPF_JIT".into(), "m".into()),
                ("CONFIG_LSM".into(), "landlock,bpf".into()),
                ("CONFIG_BPF".into(), "missing".into()),
            ]
        );
    }

    #[test]
    fn the_running_kernels_config_or_both_reasons() {
        match read_kernel_config(&crate::release::kernel_release()) {
            Ok(c) => {
                assert!(c.source == "/proc/config.gz" || c.source.starts_with("/boot/config-"));
                assert_eq!(c.values(&["CONFIG_NET"]), vec![("CONFIG_NET".into(), "y".into())]);
            }
            Err(why) => assert!(
                why.contains("/proc/config.gz") && why.contains("/boot/config-"),
                "{why}"
            ),
        }
        // Without /proc/config.gz the reason names the /boot file it looked for.
        if let Err(why) = read_kernel_config("no-such-release") {
            assert!(why.contains("/boot/config-no-such-release"), "{why}");
        }
    }
}

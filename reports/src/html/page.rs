//! The shell every hookbench page shares: head, style sheet, escaping and the generator tag.
//!
//! One home for the page's look, so that report.html and the other pages built from runs (a
//! merged report) read alike.

/// The tag in the `<head>` of every page hookbench writes: a later write may replace the page.
///
/// Both report.html and `compare --html` carry it.
pub const GENERATOR_META: &str = "<meta name=\"generator\" content=\"hookbench\">";

/// Bytes at the start of a file that [`is_hookbench_page`] looks at (the `<head>` is in them).
pub const PAGE_HEAD_BYTES: usize = 4096;

/// Whether `head`, the first [`PAGE_HEAD_BYTES`] of a file, is a page hookbench wrote.
///
/// It is when it holds [`GENERATOR_META`], or the title of a page written before the tag existed.
pub fn is_hookbench_page(head: &str) -> bool {
    head.contains(GENERATOR_META)
        || (head.starts_with("<!DOCTYPE html>")
            && (head.contains("<title>hookbench report</title>") || head.contains("<title>hookbench compare</title>")))
}

/// `s` with the HTML special characters (`& < > "`) escaped, for text and attribute values.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The style sheet of every page: verdict colours, tables, figures, flags.
///
/// Verdict classes (`supported`, `refuted`, `inconclusive`, `not-run`) colour a cell or a row;
/// `td.n` is a right-aligned figure; `.flagged` a row with a validity flag.
const STYLE: &str =
    "body{font-family:sans-serif;max-width:1300px;margin:1em auto;padding:0 8px;color:#222;line-height:1.35}\
    table{border-collapse:collapse;font-size:13px;margin:4px 0 12px}\
    td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top;overflow-wrap:break-word}\
    th{white-space:nowrap}.wide{overflow-x:auto}.v{white-space:nowrap}\
    .supported{background:#d9f2d9}.refuted{background:#f7d4d4}.inconclusive{background:#fff2cc}\
    .not-run{color:#777;background:#f4f4f4}.note{color:#777}.flagged{background:#ffe0b3}\
    .flag{color:#a40000;font-weight:bold}td.n{text-align:right;font-family:monospace;white-space:nowrap}\
    td.verdict{text-align:center;font-weight:bold;white-space:nowrap}\
    span.verdict{padding:0 4px;border-radius:3px;font-weight:bold;white-space:nowrap}\
    table.env th{font-weight:normal;color:#444}table.env th.group{font-weight:bold;color:#222;background:#eef2f7}\
    table.env td ul,li ul{margin:0;padding-left:1.2em}\
    ul.claims>li{margin:4px 0}ul.skipped>li{margin:6px 0}ul.cells{columns:2;font-size:12px;color:#444}\
    code{font-size:12px}svg{display:block;margin:8px 0}\
    .absent{color:#888}tr.beyond td{font-weight:bold;background:#fde9d9}\
    .warn{background:#fff3cd;border:1px solid #e0c060;padding:0.5em 1em}\
    span.emulated,span.uml,span.incomplete{color:#a40;font-weight:bold}";

/// The start of a page, up to and including `<body>`, with its title and the shared style.
///
/// The doctype, charset and [`GENERATOR_META`] come first. Self-contained: no script, no external URL. End the page with [`page_end`].
pub(crate) fn page_start(title: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{GENERATOR_META}<title>{}</title>\
         <style>{STYLE}</style></head><body>\n",
        esc(title)
    )
}

/// The end of a page begun with [`page_start`].
pub(crate) fn page_end() -> &'static str {
    "</body></html>\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_recognised_by_its_tag_and_escapes_its_title() {
        let page = format!("{}<p>x</p>{}", page_start("hookbench <report>"), page_end());
        assert!(is_hookbench_page(&page[..page.len().min(PAGE_HEAD_BYTES)]));
        assert!(page.contains("<title>hookbench &lt;report&gt;</title>"), "{page}");
        assert!(!page.contains("url(") && !page.contains("@import") && !page.contains("<script"));
        assert!(!is_hookbench_page("<!DOCTYPE html><html><title>other</title>"));
        assert_eq!(esc("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
    }
}

//! The text of `evidence.txt`: printable ASCII lines of at most 72 columns, wrapped at spaces.

/// Widest line `evidence.txt` may hold (mailing-list replies wrap at 72 columns).
pub const MAX_COLUMNS: usize = 72;

/// The text being built, one wrapped line at a time.
#[derive(Default)]
pub(super) struct Out {
    pub(super) text: String,
}

/// `s` as printable ASCII, since evidence.txt must survive any mailer.
///
/// Tabs become spaces, every other control or non-ASCII character `?`: suite names, labels and
/// paths come from user files.
pub(super) fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' => ' ',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

impl Out {
    /// A line made ASCII and wrapped to [`MAX_COLUMNS`].
    pub(super) fn line(&mut self, s: String) {
        for l in wrap(&ascii(&s)) {
            self.text.push_str(&l);
            self.text.push('\n');
        }
    }

    /// A line written as is (already within [`MAX_COLUMNS`], spacing kept: tables).
    pub(super) fn raw(&mut self, s: String) {
        let s = ascii(&s);
        if s.chars().count() <= MAX_COLUMNS {
            self.text.push_str(s.trim_end());
            self.text.push('\n');
        } else {
            self.line(s);
        }
    }

    /// An empty line.
    pub(super) fn blank(&mut self) {
        self.text.push('\n');
    }
}

/// Splits `s` at spaces into lines of at most [`MAX_COLUMNS`] characters, for mail.
///
/// The line's leading spaces (at most [`MAX_INDENT`]) are kept, and continuation lines are indented
/// four spaces more. A single word longer than the limit is cut.
pub fn wrap(s: &str) -> Vec<String> {
    let leading = (s.len() - s.trim_start_matches(' ').len()).min(MAX_INDENT);
    let indent = " ".repeat(leading);
    let cont = format!("{indent}    ");
    let mut lines = Vec::new();
    let mut cur = indent.clone();
    let mut has_word = false;
    for word in s.split(' ').filter(|w| !w.is_empty()) {
        if has_word && cur.chars().count() + 1 + word.chars().count() > MAX_COLUMNS {
            lines.push(std::mem::replace(&mut cur, cont.clone()));
            has_word = false;
        }
        if has_word {
            cur.push(' ');
        }
        cur.push_str(word);
        has_word = true;
        while cur.chars().count() > MAX_COLUMNS {
            let head: String = cur.chars().take(MAX_COLUMNS).collect();
            let tail: String = cur.chars().skip(MAX_COLUMNS).collect();
            lines.push(head);
            cur = format!("{cont}{tail}");
        }
    }
    lines.push(cur);
    lines
}

/// Deepest indentation [`wrap`] keeps, so that a continuation line always has room for text.
pub const MAX_INDENT: usize = 16;

/// Joins the lines [`wrap`] split back into one, for reading evidence back.
///
/// A continuation is indented four spaces more than the line it continues.
pub fn unwrap_lines(text: &str) -> Vec<String> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for l in text.lines() {
        let indent = l.len() - l.trim_start().len();
        if let Some((base, cur)) = out.last_mut() {
            if !l.trim().is_empty() && indent == *base + 4 {
                cur.push(' ');
                cur.push_str(l.trim_start());
                continue;
            }
        }
        out.push((indent, l.to_string()));
    }
    out.into_iter().map(|(_, s)| s).collect()
}

/// `s` made ASCII and cut to one line of [`MAX_COLUMNS`], ending in `...` where it was cut.
pub(super) fn one_line(s: &str) -> String {
    let s = ascii(s);
    let s = s.trim_end();
    if s.chars().count() <= MAX_COLUMNS {
        return s.to_string();
    }
    let head: String = s.chars().take(MAX_COLUMNS - 3).collect();
    format!("{}...", head.trim_end())
}

/// `s` made ASCII and wrapped ([`wrap`]) into at most `max` lines, the last ending in `...`
/// where text was cut.
pub(super) fn at_most(s: &str, max: usize) -> Vec<String> {
    let mut lines = wrap(&ascii(s));
    if lines.len() > max {
        lines.truncate(max.max(1));
        if let Some(last) = lines.last_mut() {
            let room: String = last.chars().take(MAX_COLUMNS - 3).collect();
            *last = format!("{}...", room.trim_end());
        }
    }
    lines
}

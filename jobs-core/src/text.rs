//! Text from user code made storable: a job's error or panic message is
//! untrusted input that may hold a NUL byte (which PostgreSQL's `text` and
//! `jsonb` refuse) or a megabyte.

use std::borrow::Cow;

/// The most bytes of a reason or error text that a storage keeps (8 KiB).
/// A longer text is cut at a character boundary and ends with
/// [`TRUNCATION_MARKER`] and its full length, so the stored text is never
/// longer than this.
pub const MAX_TEXT_LEN: usize = 8 * 1024;

/// What a cut text ends with, followed by its full length in bytes and `]`:
/// `"… [truncated, 1048576 bytes in all]"`.
pub const TRUNCATION_MARKER: &str = "… [truncated, ";

/// What a NUL byte (`\0`) becomes: U+2400 SYMBOL FOR NULL, so the text
/// stays readable and says where the NUL was.
pub const NUL_REPLACEMENT: char = '\u{2400}';

/// `text` as every storage can keep it: each NUL replaced by
/// [`NUL_REPLACEMENT`], then cut to at most [`MAX_TEXT_LEN`] bytes with a
/// marker naming the full length. Borrows when nothing had to change;
/// applying it twice changes nothing more.
///
/// ```
/// use jobs_core::{storable_text, MAX_TEXT_LEN};
/// assert_eq!(storable_text("bad\0byte"), "bad\u{2400}byte");
/// let long = "x".repeat(1 << 20);
/// let stored = storable_text(&long);
/// assert!(stored.len() <= MAX_TEXT_LEN);
/// assert!(stored.ends_with("[truncated, 1048576 bytes in all]"));
/// ```
pub fn storable_text(text: &str) -> Cow<'_, str> {
    let text = if text.contains('\0') {
        Cow::Owned(text.replace('\0', NUL_REPLACEMENT.encode_utf8(&mut [0; 4])))
    } else {
        Cow::Borrowed(text)
    };
    if text.len() <= MAX_TEXT_LEN {
        return text;
    }
    let marker = format!("{TRUNCATION_MARKER}{} bytes in all]", text.len());
    let mut keep = MAX_TEXT_LEN - marker.len();
    while !text.is_char_boundary(keep) {
        keep -= 1;
    }
    Cow::Owned(format!("{}{marker}", &text[..keep]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_clean_text_is_borrowed_unchanged() {
        assert!(matches!(storable_text("fine"), Cow::Borrowed("fine")));
    }

    #[test]
    fn nul_bytes_become_a_visible_symbol() {
        assert_eq!(storable_text("\0a\0"), "\u{2400}a\u{2400}");
    }

    #[test]
    fn long_text_is_cut_on_a_char_boundary_with_its_length() {
        let long = "é".repeat(MAX_TEXT_LEN); // 2 bytes each
        let stored = storable_text(&long);
        assert!(stored.len() <= MAX_TEXT_LEN, "{}", stored.len());
        let full = long.len();
        assert!(stored.ends_with(&format!("[truncated, {full} bytes in all]")));
        assert!(stored.starts_with("éé"));
    }

    #[test]
    fn it_is_idempotent() {
        for text in ["plain", "nul\0", &"y".repeat(3 * MAX_TEXT_LEN)] {
            let once = storable_text(text).into_owned();
            assert_eq!(storable_text(&once), once);
        }
    }

    #[test]
    fn text_of_exactly_the_limit_is_kept() {
        let text = "z".repeat(MAX_TEXT_LEN);
        assert_eq!(storable_text(&text), text);
    }
}

//! Lines of a document as LSP counts them (`\n`, `\r\n` and `\r` each end a line), in byte
//! offsets: shared by the question builder and the LSP position conversions.

/// Byte offsets of the start of each line; the first is always 0.
pub fn line_starts(text: &str) -> Vec<usize> {
    let mut res = vec![0];
    let bytes = text.as_bytes();
    let mut idx = 0;
    while idx < bytes.len() {
        match bytes[idx] {
            b'\n' => res.push(idx + 1),
            b'\r' if bytes.get(idx + 1) == Some(&b'\n') => {
                res.push(idx + 2);
                idx += 1;
            }
            b'\r' => res.push(idx + 1),
            _ => {}
        }
        idx += 1;
    }
    res
}

/// The 0-based line that byte `offset` lies on.
pub fn line_of(text: &str, offset: usize) -> usize {
    let starts = line_starts(text);
    starts.partition_point(|&start| start <= offset.min(text.len())) - 1
}

/// Byte offsets of the start of 0-based `line` and of its end (line break excluded), or
/// `None` past the last line.
pub fn line_span(text: &str, line: usize) -> Option<(usize, usize)> {
    let starts = line_starts(text);
    let start = *starts.get(line)?;
    let end = starts.get(line + 1).copied().unwrap_or(text.len());
    let content = text[start..end].trim_end_matches(['\n', '\r']);
    Some((start, start + content.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_end_at_every_lsp_line_break() {
        assert_eq!(line_starts("a\nb\r\nc\rd"), vec![0, 2, 5, 7]);
        assert_eq!(line_of("a\nb\r\nc", 4), 1);
        assert_eq!(line_of("a\nb\r\nc", 5), 2);
        assert_eq!(line_of("ab", 99), 0);
        assert_eq!(line_span("a\nbc\r\n", 1), Some((2, 4)));
        assert_eq!(line_span("a\nbc\r\n", 2), Some((6, 6)));
        assert_eq!(line_span("a", 1), None);
    }
}

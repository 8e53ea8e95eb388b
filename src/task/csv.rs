//! A small RFC 4180 CSV reader: comma separated, `"`-quoted fields that may hold commas,
//! doubled quotes and line breaks. Enough for the original MMLU files; no header handling.

/// One CSV record: its fields and the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvRecord {
    /// 1-based line number of the record's first character.
    pub line: usize,
    /// The fields, unquoted.
    pub fields: Vec<String>,
}

/// A CSV syntax error: the 1-based line and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvError {
    /// 1-based line of the error.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// Parses `text` into records; blank lines are not records. A `\r\n` line end counts as one.
pub fn parse_csv(text: &str) -> Result<Vec<CsvRecord>, CsvError> {
    let mut records = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut field = String::new();
    let mut line = 1usize;
    let mut record_line = 1usize;
    // State: inside quotes, and whether the current field was quoted (then only `,`/EOL may follow).
    let mut in_quotes = false;
    let mut quoted = false;
    let mut quote_line = 0usize;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                '\n' => {
                    line += 1;
                    field.push('\n');
                }
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() && !quoted => {
                in_quotes = true;
                quoted = true;
                quote_line = line;
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                quoted = false;
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                end_record(&mut records, &mut fields, &mut field, record_line);
                quoted = false;
                line += 1;
                record_line = line;
            }
            _ if quoted => {
                return Err(CsvError {
                    line,
                    reason: format!("unexpected {c:?} after a closing quote"),
                });
            }
            _ => field.push(c),
        }
    }
    if in_quotes {
        return Err(CsvError {
            line: quote_line,
            reason: "quoted field is never closed".into(),
        });
    }
    end_record(&mut records, &mut fields, &mut field, record_line);
    Ok(records)
}

/// Closes the current record unless it is a blank line.
fn end_record(
    records: &mut Vec<CsvRecord>,
    fields: &mut Vec<String>,
    field: &mut String,
    line: usize,
) {
    let blank = fields.is_empty() && field.is_empty();
    fields.push(std::mem::take(field));
    let fields = std::mem::take(fields);
    if !blank {
        records.push(CsvRecord { line, fields });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(line: usize, fields: &[&str]) -> CsvRecord {
        CsvRecord {
            line,
            fields: fields.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn plain_and_quoted_fields() {
        let text = "a,b,c\n\"x, y\",\"say \"\"hi\"\"\",z\n";
        assert_eq!(
            parse_csv(text).unwrap(),
            vec![
                rec(1, &["a", "b", "c"]),
                rec(2, &["x, y", "say \"hi\"", "z"])
            ]
        );
    }

    #[test]
    fn newlines_inside_quotes_keep_line_numbers() {
        let text = "\"two\nlines\",b\r\nnext,\"\"\n\nlast,x";
        assert_eq!(
            parse_csv(text).unwrap(),
            vec![
                rec(1, &["two\nlines", "b"]),
                rec(3, &["next", ""]),
                rec(5, &["last", "x"])
            ]
        );
    }

    #[test]
    fn empty_fields_and_trailing_comma() {
        assert_eq!(parse_csv(",a,\n").unwrap(), vec![rec(1, &["", "a", ""])]);
    }

    #[test]
    fn unclosed_quote_names_its_line() {
        let err = parse_csv("ok,1\n\"open,2\nmore\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.reason.contains("never closed"));
    }

    #[test]
    fn text_after_closing_quote_is_an_error() {
        let err = parse_csv("a\n\"x\"y,b\n").unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn quote_inside_unquoted_field_is_literal() {
        assert_eq!(
            parse_csv("5\" pipe,b").unwrap(),
            vec![rec(1, &["5\" pipe", "b"])]
        );
    }
}

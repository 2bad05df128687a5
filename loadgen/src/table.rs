//! Results as an aligned text table, a Markdown table or CSV.

pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// `headers` is one string, the column names separated by `|`.
    pub fn new(headers: &str) -> Self {
        Table {
            headers: headers.split('|').map(|h| h.trim().to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn width(&self) -> usize {
        self.headers.len()
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Columns padded to line up; numbers (cells starting with a digit) right-aligned.
    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| cell(r, c).chars().count())
                    .chain([self.headers[c].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let cells: Vec<String> = (0..widths.len())
                .map(|c| {
                    let text = cell(row, c);
                    let pad = " ".repeat(widths[c] - text.chars().count());
                    if text.starts_with(|ch: char| ch.is_ascii_digit()) {
                        pad + text
                    } else {
                        text.to_string() + &pad
                    }
                })
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out
    }

    pub fn markdown(&self) -> String {
        let mut out = format!("| {} |\n", self.headers.join(" | "));
        out.push_str(&format!("|{}\n", " --- |".repeat(self.headers.len())));
        for row in &self.rows {
            let cells: Vec<&str> = (0..self.headers.len()).map(|c| cell(row, c)).collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        out
    }

    /// A header line and one line per row.
    pub fn csv(&self) -> String {
        let mut out = csv_line(&self.headers);
        for row in &self.rows {
            out.push_str(&csv_line(row));
        }
        out
    }
}

fn cell(row: &[String], c: usize) -> &str {
    row.get(c).map_or("", String::as_str)
}

fn csv_line(fields: &[String]) -> String {
    let quoted: Vec<String> = fields
        .iter()
        .map(|f| {
            if f.contains([',', '"', '\n']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f.clone()
            }
        })
        .collect();
    quoted.join(",") + "\n"
}

/// `1234567.0` -> `"1,234,567"`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if value < -0.5 { format!("-{out}") } else { out }
}

/// Nanoseconds as milliseconds with 3 significant-ish digits, or `-`.
pub fn ms(ns: Option<u64>) -> String {
    match ns {
        None => "-".into(),
        Some(ns) => {
            let ms = ns as f64 / 1e6;
            if ms >= 100.0 {
                format!("{ms:.0}")
            } else if ms >= 10.0 {
                format!("{ms:.1}")
            } else {
                format!("{ms:.3}")
            }
        }
    }
}

/// An optional figure with `digits` decimals, or `-`.
pub fn opt(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_render_in_three_forms() {
        let mut t = Table::new("step | clients");
        t.row(vec!["step4_poll".into(), "19,900".into()]);
        t.row(vec!["a,b".into(), "7".into()]);
        assert_eq!(
            t.render(),
            "step        clients\nstep4_poll   19,900\na,b               7\n"
        );
        assert_eq!(
            t.markdown(),
            "| step | clients |\n| --- | --- |\n| step4_poll | 19,900 |\n| a,b | 7 |\n"
        );
        assert_eq!(t.csv(), "step,clients\nstep4_poll,\"19,900\"\n\"a,b\",7\n");
    }

    #[test]
    fn numbers_format() {
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(0.0), "0");
        assert_eq!(ms(Some(1_234_567)), "1.235");
        assert_eq!(ms(Some(123_456_789)), "123");
        assert_eq!(ms(None), "-");
        assert_eq!(opt(Some(2.345), 1), "2.3");
    }
}

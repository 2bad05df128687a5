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

    /// Adds a row; cells missing at its end are left empty.
    pub fn row(&mut self, mut cells: Vec<String>) {
        cells.resize(self.width(), String::new());
        self.rows.push(cells);
    }

    /// Columns padded to line up; numbers (cells starting with a digit) right-aligned.
    pub fn render(&self) -> String {
        let width = |c: usize| self.lines().map(|r| r[c].chars().count()).max();
        let widths: Vec<usize> = (0..self.width()).map(|c| width(c).unwrap_or(0)).collect();
        let mut out = String::new();
        for row in self.lines() {
            let cells: Vec<String> = (0..widths.len())
                .map(|c| {
                    let (text, w) = (&row[c], widths[c]);
                    if text.starts_with(|ch: char| ch.is_ascii_digit()) {
                        format!("{text:>w$}")
                    } else {
                        format!("{text:<w$}")
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
        out.push_str(&format!("|{}\n", " --- |".repeat(self.width())));
        for row in &self.rows {
            out.push_str(&format!("| {} |\n", row.join(" | ")));
        }
        out
    }

    /// A header line and one line per row.
    pub fn csv(&self) -> String {
        let mut out = String::new();
        for row in self.lines() {
            let fields: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
            out.push_str(&(fields.join(",") + "\n"));
        }
        out
    }

    /// The header line, then the rows.
    fn lines(&self) -> impl Iterator<Item = &Vec<String>> {
        std::iter::once(&self.headers).chain(&self.rows)
    }

    /// The one-row table (`csv` false) or CSV (`csv` true) of `columns`.
    pub fn one_row(columns: &[Column], csv: bool) -> Table {
        let mut t = Table {
            headers: Vec::new(),
            rows: vec![Vec::new()],
        };
        for c in columns {
            let (header, cell) = if csv {
                (c.csv, &c.raw)
            } else {
                (c.table, &c.shown)
            };
            if !header.is_empty() {
                t.headers.push(header.to_string());
                t.rows[0].push(cell.clone());
            }
        }
        t
    }
}

/// One column of a scenario's result: its header in the table and in the CSV (empty where it
/// does not appear) and its cell in each. The table shows figures for reading (`1,234`), the
/// CSV for computing (`1234`).
pub struct Column {
    pub table: &'static str,
    pub csv: &'static str,
    pub shown: String,
    pub raw: String,
}

/// A column whose cell is written one way in the table and another in the CSV.
pub fn column(table: &'static str, csv: &'static str, shown: String, raw: String) -> Column {
    Column {
        table,
        csv,
        shown,
        raw,
    }
}

/// A column written the same way in both.
pub fn same(table: &'static str, csv: &'static str, cell: String) -> Column {
    column(table, csv, cell.clone(), cell)
}

/// A count: `1,234` in the table, `1234` in the CSV.
pub fn count(table: &'static str, csv: &'static str, n: u64) -> Column {
    column(table, csv, thousands(n as f64), n.to_string())
}

/// A rate: `1,234` in the table, `1234` in the CSV.
pub fn rate(table: &'static str, csv: &'static str, per_s: f64) -> Column {
    column(table, csv, thousands(per_s), format!("{per_s:.0}"))
}

/// A CPU percentage: no decimal in the table, one in the CSV.
pub fn cpu(table: &'static str, csv: &'static str, percent: Option<f64>) -> Column {
    column(table, csv, opt(percent, 0), opt(percent, 1))
}

/// The `result` cell of the table: `ok` or what went wrong.
pub fn result(problem: Option<String>) -> Column {
    same("result", "", problem.unwrap_or_else(|| "ok".into()))
}

/// The table's cells of `columns`, in order.
pub fn shown(columns: Vec<Column>) -> Vec<String> {
    let in_table = columns.into_iter().filter(|c| !c.table.is_empty());
    in_table.map(|c| c.shown).collect()
}

/// A CSV field, in quotes (its own quotes doubled) if it holds a comma, a quote or a newline.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
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
    let ms = ns.map(|ns| ns as f64 / 1e6);
    let digits = match ms {
        Some(ms) if ms >= 100.0 => 0,
        Some(ms) if ms >= 10.0 => 1,
        _ => 3,
    };
    opt(ms, digits)
}

/// KiB as MiB with one decimal, or `-`.
pub fn mib(kib: Option<u64>) -> String {
    opt(kib.map(|k| k as f64 / 1024.0), 1)
}

/// A whole number without separators, or `-`.
pub fn whole(n: Option<u64>) -> String {
    n.map_or_else(|| "-".into(), |n| n.to_string())
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

//! SQL written once for both backends. A query is written with SQLite's numbered
//! placeholders (`?1`, `?2`, …); [`sql!`] makes the PostgreSQL text (`$1`, `$2`, …) from it
//! at compile time. Where the dialects differ (PostgreSQL's casts, `FOR UPDATE`), each
//! backend writes its own, and only that is written twice.

/// One query in both dialects.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sql {
    pub(crate) sqlite: &'static str,
    pub(crate) pg: &'static str,
}

/// `text` with every `?` that starts a numbered placeholder made a `$`: the same length,
/// so it fits an array the size of the text.
pub(crate) const fn dollars<const N: usize>(text: &str) -> [u8; N] {
    let bytes = text.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        if bytes[i] == b'?' && i + 1 < N && bytes[i + 1].is_ascii_digit() {
            out[i] = b'$';
        }
        i += 1;
    }
    out
}

/// A query written once (`?N` placeholders), for both backends: `sql!("…").sqlite`,
/// `sql!("…").pg`. `sql!("…", pg_suffix = " FOR UPDATE")` adds what only PostgreSQL says
/// (a row lock SQLite has no need of: its writer is alone) to the end of the query.
macro_rules! sql {
    ($text:literal) => {
        sql!($text, pg_suffix = "")
    };
    ($text:literal, pg_suffix = $suffix:literal) => {{
        const TEXT: &str = $text;
        const PG_TEXT: &str = concat!($text, $suffix);
        const PG: [u8; PG_TEXT.len()] = $crate::sql::dollars(PG_TEXT);
        $crate::sql::Sql {
            sqlite: TEXT,
            // Only ASCII `?` became ASCII `$`: still UTF-8.
            pg: match ::core::str::from_utf8(&PG) {
                Ok(pg) => pg,
                Err(_) => PG_TEXT,
            },
        }
    }};
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_become_postgres_ones_and_nothing_else_changes() {
        const Q: super::Sql = sql!("SELECT * FROM t WHERE a = ?1 AND b = ?12 AND c = '?'");
        assert_eq!(
            Q.sqlite,
            "SELECT * FROM t WHERE a = ?1 AND b = ?12 AND c = '?'"
        );
        assert_eq!(Q.pg, "SELECT * FROM t WHERE a = $1 AND b = $12 AND c = '?'");
        const L: super::Sql = sql!("SELECT * FROM t WHERE a = ?1", pg_suffix = " FOR UPDATE");
        assert_eq!(L.sqlite, "SELECT * FROM t WHERE a = ?1");
        assert_eq!(L.pg, "SELECT * FROM t WHERE a = $1 FOR UPDATE");
    }
}

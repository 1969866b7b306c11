//! Key windows for the derived tables ([`crate::tables`], [`crate::provenance::table`]).
//!
//! A derived table is a `UNION ALL` whose row key is an expression of each branch's own
//! key (`v.id * 16 + 3`, `l.id * 64 + 4`), so a page in key order (`okey > last ORDER BY
//! okey LIMIT n`) is no index range: the database reads every row of every branch and
//! sorts them, for every page, and a type of *N* rows costs *N*²/n row reads in all.
//! [`narrow`] writes the derived table again with, in each branch, the range of that
//! branch's own key that a key window `[lo, hi]` allows (`v.id >= 6 AND v.id <= 62`),
//! an index range, and the same in the derived tables a branch reads (a Provenance of a
//! Condition reads the Condition table). The conditions only leave out rows whose key
//! lies outside the window, so with the window's own `key >= lo AND key <= hi` on the
//! outer query the rows are exactly those of the derived table in that window.

/// `from` (a `FROM` clause: `(SELECT … UNION ALL SELECT …) alias …`) with each branch
/// of the derived table named `alias` limited to the rows whose `column` (the key the
/// branches name `… AS column`) lies in `lo..=hi` (`None` for no lower bound); `None`
/// when `from` is not such a table or a branch's key is not `t.c`, `t.c * S` or
/// `t.c * S + N`.
pub fn narrow(from: &str, alias: &str, column: &str, lo: Option<i64>, hi: i64) -> Option<String> {
    let (open, close) = derived(from, alias)?;
    let inner = &from[open + 1..close];
    let mut arms = Vec::new();
    for arm in split_top(inner, " UNION ALL ") {
        arms.push(narrow_arm(arm, column, lo, hi)?);
    }
    Some(format!(
        "{}({}){}",
        &from[..open],
        arms.join(" UNION ALL "),
        &from[close + 1..]
    ))
}

/// One branch with its key range.
fn narrow_arm(arm: &str, column: &str, lo: Option<i64>, hi: i64) -> Option<String> {
    let expression = key_expression(arm, column)?;
    let (base, stride, offset) = parse_key(expression)?;
    // base * stride + offset in lo..=hi (stride > 0).
    let base_lo = match lo {
        Some(lo) => Some(ceil_div(lo.checked_sub(offset)?, stride)?),
        None => None,
    };
    let base_hi = hi.checked_sub(offset)?.div_euclid(stride);
    let mut condition = format!("{base} <= {base_hi}");
    if let Some(base_lo) = base_lo {
        condition = format!("{base} >= {base_lo} AND {condition}");
    }
    // A branch reading a derived table of its own (a Provenance of a Condition) narrows
    // that one too, in its key.
    let mut arm = arm.to_owned();
    if let Some((table, inner_column)) = base.split_once('.')
        && derived(&arm, table).is_some()
    {
        arm = narrow(&arm, table, inner_column, base_lo, base_hi)?;
    }
    Some(match last_top(&arm, " WHERE ") {
        Some(at) => format!(
            "{} WHERE {condition} AND ({})",
            &arm[..at],
            &arm[at + " WHERE ".len()..]
        ),
        None => format!("{arm} WHERE {condition}"),
    })
}

fn ceil_div(a: i64, b: i64) -> Option<i64> {
    let q = a.div_euclid(b);
    Some(if a.rem_euclid(b) == 0 {
        q
    } else {
        q.checked_add(1)?
    })
}

/// The expression a branch names `… AS column`.
fn key_expression<'a>(arm: &'a str, column: &str) -> Option<&'a str> {
    let marker = format!(" AS {column}");
    let mut comma = None;
    let at = top_positions(arm).find(|&i| {
        if arm.as_bytes()[i] == b',' {
            comma = Some(i);
        }
        arm[i..].starts_with(&marker)
            && arm[i + marker.len()..]
                .chars()
                .next()
                .is_none_or(|c| c == ',' || c == ' ')
    })?;
    // Back to the previous top-level comma, or the `SELECT`.
    let start = comma
        .map(|i| i + 1)
        .or_else(|| arm.find("SELECT ").map(|i| i + "SELECT ".len()))?;
    Some(arm[start..at].trim())
}

/// `t.c`, `t.c * S` or `t.c * S + N`: the column, `S` and `N`.
fn parse_key(expression: &str) -> Option<(&str, i64, i64)> {
    let words: Vec<&str> = expression.split_whitespace().collect();
    let column = |w: &str| {
        w.split_once('.').is_some_and(|(t, c)| {
            !t.is_empty()
                && !c.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        })
    };
    match words.as_slice() {
        [c] if column(c) => Some((c, 1, 0)),
        [c, "*", s] if column(c) => Some((c, s.parse().ok().filter(|s| *s > 0)?, 0)),
        [c, "*", s, "+", n] if column(c) => Some((
            c,
            s.parse().ok().filter(|s| *s > 0)?,
            n.parse().ok().filter(|n| *n >= 0)?,
        )),
        _ => None,
    }
}

/// Where the top-level parenthesized group named `alias` (`(…) alias`) lies in `text`:
/// its opening and closing parentheses.
fn derived(text: &str, alias: &str) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut open = None;
    let mut quote = None;
    for (i, &b) in bytes.iter().enumerate() {
        if let Some(q) = quote {
            if b == q {
                quote = None;
            }
            continue;
        }
        match b {
            b'\'' | b'"' => quote = Some(b),
            b'(' => {
                if depth == 0 {
                    open = Some(i);
                }
                depth += 1;
            }
            b')' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    let rest = &text[i + 1..];
                    let named = rest.strip_prefix(' ').and_then(|r| r.strip_prefix(alias));
                    if named.is_some_and(|r| r.is_empty() || r.starts_with(' ')) {
                        let inner = &text[open? + 1..i];
                        if inner.trim_start().starts_with("SELECT ") {
                            return Some((open?, i));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    None
}

/// The byte positions of `text` outside parentheses and quotes, in order.
fn top_positions(text: &str) -> impl DoubleEndedIterator<Item = usize> + '_ {
    // Forwards is one pass; backwards (the last `WHERE`) collects the positions first.
    let mut depth = 0usize;
    let mut quote = None;
    let bytes = text.as_bytes();
    let mut tops = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            if b == q {
                quote = None;
            }
        } else {
            match b {
                b'\'' | b'"' => quote = Some(b),
                b'(' => depth += 1,
                b')' => depth = depth.saturating_sub(1),
                _ if depth == 0 => {
                    // Runs of top-level text are kept as ranges: far fewer than bytes.
                    match tops.last_mut() {
                        Some((_, end)) if *end == i => *end = i + 1,
                        _ => tops.push((i, i + 1)),
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    tops.into_iter().flat_map(|(start, end)| start..end)
}

/// `text` split at each top-level `separator`.
fn split_top<'a>(text: &'a str, separator: &str) -> Vec<&'a str> {
    let mut parts = Vec::new();
    let mut start = 0;
    for i in top_positions(text) {
        if i >= start && text[i..].starts_with(separator) {
            parts.push(&text[start..i]);
            start = i + separator.len();
        }
    }
    parts.push(&text[start..]);
    parts
}

/// The last top-level `needle` in `text`.
fn last_top(text: &str, needle: &str) -> Option<usize> {
    top_positions(text)
        .rev()
        .find(|&i| text[i..].starts_with(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_get_their_own_key_ranges() {
        let from = "(SELECT (SELECT MAX(h.v) FROM hist h WHERE h.id = v.id) AS ver, v.id * 16 + 3 AS okey \
                    FROM vitals v WHERE v.a > 0 OR v.b > 0 UNION ALL \
                    SELECT NULL AS ver, r.id * 16 + 14 AS okey FROM results r \
                    WHERE r.x NOT IN ('a (b', 'UNION ALL')) o";
        let narrowed = narrow(from, "o", "okey", Some(100), 400).unwrap();
        // 16*6+3 = 99 < 100 <= 16*7+3; 16*24+3 = 387 <= 400; 16*6+14 = 110.
        assert!(
            narrowed.contains("WHERE v.id >= 7 AND v.id <= 24 AND (v.a > 0 OR v.b > 0)"),
            "{narrowed}"
        );
        assert!(
            narrowed.contains("WHERE r.id >= 6 AND r.id <= 24 AND (r.x NOT IN"),
            "{narrowed}"
        );
        assert!(narrowed.ends_with(") o"), "{narrowed}");
        assert!(
            narrowed.contains("WHERE h.id = v.id"),
            "the subquery is left alone"
        );
        // No lower bound.
        let first = narrow(from, "o", "okey", None, 15).unwrap();
        assert!(first.contains("WHERE v.id <= 0 AND ("), "{first}");
        // Not a derived table, or a key it cannot read.
        assert_eq!(narrow("patient_data p", "p", "id", None, 5), None);
        assert_eq!(
            narrow(
                "(SELECT a.id + 1 AS okey FROM a UNION ALL SELECT b.id AS okey FROM b) o",
                "o",
                "okey",
                None,
                5
            ),
            None
        );
    }

    #[test]
    fn the_derived_tables_are_narrowed_branch_by_branch() {
        for (from, alias, column, arms) in [
            (crate::tables::OBSERVATIONS, "o", "okey", 14),
            (crate::tables::CONDITIONS, "c", "ckey", 2),
            (crate::tables::MEDICATION_REQUESTS, "m", "mkey", 2),
        ] {
            let narrowed = narrow(from, alias, column, Some(64), 127).expect(column);
            // A lower and an upper bound in every branch.
            let added = |text: &str| narrowed.matches(text).count() - from.matches(text).count();
            assert_eq!((added(" >= "), added(" <= ")), (arms, arms), "{narrowed}");
        }
        let provenance = crate::provenance::table();
        let narrowed = narrow(&provenance, "pv", "pkey", Some(64), 127).unwrap();
        // Every target's branch, and the branches of the three derived targets.
        let arms = crate::provenance::TARGETS.len() + 14 + 2 + 2;
        let added = |text: &str| narrowed.matches(text).count() - provenance.matches(text).count();
        assert_eq!((added(" >= "), added(" <= ")), (arms, arms), "{narrowed}");
        assert!(narrowed.contains("WHERE p.id >= 1 AND p.id <= 1 AND (1=1)"));
    }

    #[test]
    fn a_branch_over_a_derived_table_narrows_it_too() {
        let from = format!(
            "(SELECT p.id * 64 + 0 AS pkey FROM patient_data p WHERE 1=1 UNION ALL \
             SELECT c.ckey * 64 + 5 AS pkey FROM {} WHERE 1=1) pv LEFT JOIN (SELECT 1 AS x) org ON 1=1",
            "(SELECT l.id * 2 AS ckey FROM lists l WHERE l.type = 'p' UNION ALL \
              SELECT ie.id * 2 + 1 AS ckey FROM issue_encounter ie JOIN lists l ON l.id = ie.list_id WHERE 1=1) c"
        );
        let narrowed = narrow(&from, "pv", "pkey", Some(640), 1279).unwrap();
        // pkey = ckey * 64 + 5 in 640..=1279: ckey in 10..=19; l.id * 2 in that: 5..=9;
        // ie.id * 2 + 1: 5..=9.
        assert!(
            narrowed.contains("WHERE p.id >= 10 AND p.id <= 19"),
            "{narrowed}"
        );
        assert!(
            narrowed.contains("WHERE c.ckey >= 10 AND c.ckey <= 19"),
            "{narrowed}"
        );
        assert!(
            narrowed.contains("WHERE l.id >= 5 AND l.id <= 9 AND (l.type = 'p')"),
            "{narrowed}"
        );
        assert!(
            narrowed.contains("WHERE ie.id >= 5 AND ie.id <= 9 AND (1=1)"),
            "{narrowed}"
        );
        assert!(
            narrowed.ends_with(" pv LEFT JOIN (SELECT 1 AS x) org ON 1=1"),
            "{narrowed}"
        );
    }
}

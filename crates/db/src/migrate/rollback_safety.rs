//! The rule that makes `helm rollback` safe, enforced: the previous release's binaries keep
//! working against a database migrated by this one. A migration may add (tables, nullable
//! columns, columns with a default, indexes, constraints added `NOT VALID`); it may not take
//! away or reshape what a previous binary reads or writes. Every migration is scanned, the first
//! released set included.

use super::MIGRATIONS;

/// What one statement of a migration does that a previous binary may not survive, if anything.
fn violation(statement: &str) -> Option<&'static str> {
    // Padded, so that whole words match at either end too.
    let s = format!(" {} ", statement.split_whitespace().collect::<Vec<_>>().join(" ").to_uppercase());
    let forbidden = [
        ("DROP TABLE", "drops a table a previous binary uses"),
        ("DROP COLUMN", "drops a column a previous binary reads or writes"),
        (" RENAME ", "renames what a previous binary names"),
        ("SET DATA TYPE", "changes a column's type"),
        ("SET NOT NULL", "makes an existing column NOT NULL: a previous binary's insert without it fails"),
        ("DROP DEFAULT", "drops a default a previous binary's inserts rely on"),
        ("TRUNCATE ", "empties a table"),
    ];
    if let Some((_, why)) = forbidden.iter().find(|(words, _)| s.contains(words)) {
        return Some(why);
    }
    let s = s.trim();
    if !s.starts_with("ALTER TABLE") {
        return None;
    }
    for clause in clauses(s) {
        if clause.starts_with("ALTER COLUMN") && clause.contains(" TYPE ") {
            return Some("changes a column's type");
        }
        if clause.starts_with("ADD COLUMN") && clause.contains("NOT NULL") && !clause.contains("DEFAULT") {
            return Some("adds a NOT NULL column without a default: a previous binary's insert fails");
        }
        if clause.starts_with("ADD CONSTRAINT") && !clause.contains("NOT VALID") {
            return Some("adds a constraint without NOT VALID: it checks every existing row under lock");
        }
    }
    None
}

/// The comma-separated clauses of an `ALTER TABLE` statement (commas inside parentheses, as in
/// a CHECK's list, do not separate).
fn clauses(statement: &str) -> Vec<String> {
    // After `ALTER TABLE [IF EXISTS] [ONLY] <name>`.
    let words: Vec<&str> = statement.splitn(6, ' ').collect();
    let skip = 2 + words.iter().skip(2).take_while(|w| matches!(**w, "IF" | "EXISTS" | "ONLY")).count() + 1;
    let body = statement.splitn(skip + 1, ' ').nth(skip).unwrap_or_default();
    let (mut out, mut current, mut depth) = (Vec::new(), String::new(), 0i32);
    for c in body.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(current.trim().to_owned());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    out.push(current.trim().to_owned());
    out
}

/// The statements of a migration, without `--` comments and string literals (a comment that
/// says "rename" is not a rename).
fn statements(sql: &str) -> Vec<String> {
    let mut code = String::new();
    let mut in_string = false;
    for line in sql.lines() {
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\'' {
                in_string = !in_string;
                code.push('\'');
                continue;
            }
            if in_string {
                continue;
            }
            if c == '-' && chars.peek() == Some(&'-') {
                break;
            }
            code.push(c);
        }
        code.push('\n');
    }
    code.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// Every violation of every migration, as `<version> <name>: <why>: <statement>`.
fn violations(migrations: &[(i32, &str, &str)]) -> Vec<String> {
    let mut found = Vec::new();
    for (version, name, sql) in migrations {
        for statement in statements(sql) {
            if let Some(why) = violation(&statement) {
                found.push(format!("{version} {name}: {why}: {statement}"));
            }
        }
    }
    found
}

/// Migrations that had to break the rule, each with what a rollback past it loses; the README's
/// "Upgrade and rollback" says the same. Adding one here is a decision, never a way to silence
/// the scan.
const EXCEPTIONS: &[(i32, &str)] = &[(
    40,
    "the attempt log becomes a partitioned table (the only way to drop expired rows whole): the \
     old table is renamed, copied and dropped, and its unique key gains finished_at, so senders \
     older than it keep their attempt rows waiting in the attempts topic until a newer sender \
     runs again; deliveries go on and nothing is lost",
)];

#[test]
fn every_migration_keeps_the_previous_release_working() {
    let allowed: Vec<i32> = EXCEPTIONS.iter().map(|(version, _)| *version).collect();
    let others: Vec<_> =
        MIGRATIONS.iter().copied().filter(|(version, _, _)| !allowed.contains(version)).collect();
    let found = violations(&others);
    assert!(found.is_empty(), "migrations that would break a rollback:\n{}", found.join("\n"));
}

#[test]
fn the_scan_finds_each_forbidden_change() {
    let bad = [
        "ALTER TABLE subscriptions DROP COLUMN url;",
        "ALTER TABLE subscriptions RENAME COLUMN url TO endpoint;",
        "ALTER TABLE portals RENAME TO tenants;",
        "ALTER TABLE subscriptions ALTER COLUMN url TYPE VARCHAR(100);",
        "ALTER TABLE subscriptions ALTER COLUMN url SET DATA TYPE VARCHAR(100);",
        "ALTER TABLE subscriptions ALTER COLUMN description SET NOT NULL;",
        "ALTER TABLE subscriptions ALTER COLUMN description DROP DEFAULT;",
        "ALTER TABLE subscriptions ADD COLUMN a INTEGER, ADD COLUMN owner TEXT NOT NULL;",
        "ALTER TABLE delivery_attempts ADD CONSTRAINT positive CHECK (attempt IN (1, 2));",
        "DROP TABLE api_keys;",
        "TRUNCATE delivery_attempts;",
    ];
    for sql in bad {
        assert_eq!(violations(&[(99, "bad", sql)]).len(), 1, "not caught: {sql}");
    }
    let fine = [
        "-- we never rename or drop a column here\nALTER TABLE subscriptions ADD COLUMN owner TEXT;",
        "ALTER TABLE subscriptions ADD COLUMN n INTEGER NOT NULL DEFAULT 0;",
        "ALTER TABLE t ADD CONSTRAINT c CHECK (x IN ('a', 'b')) NOT VALID, ADD COLUMN y TEXT;",
        "CREATE TABLE fresh (id TEXT PRIMARY KEY, name TEXT NOT NULL);",
        "COMMENT ON COLUMN t.c IS 'values were renamed; the old column was dropped';",
    ];
    for sql in fine {
        assert!(violations(&[(99, "fine", sql)]).is_empty(), "flagged: {sql}");
    }
}

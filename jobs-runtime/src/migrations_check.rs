//! The migrations spell out the list of states in a `CHECK` constraint, a
//! second copy of [`State::ALL`] that SQL needs. This test keeps the copies
//! in step with the one source: a state added in Rust without a migration
//! that lets the tables hold it fails here, not in production.

use jobs_core::State;

/// The quoted names in the first `state IN (...)` of `sql`.
fn checked_states(sql: &str) -> Vec<String> {
    let start = sql.find("state IN").expect("a CHECK on state") + "state IN".len();
    let list = &sql[start..];
    let list = &list[list.find('(').expect("(") + 1..list.find(')').expect(")")];
    list.split(',')
        .map(|name| name.trim().trim_matches('\'').to_owned())
        .collect()
}

#[test]
fn every_migration_allows_exactly_the_states_of_the_state_machine() {
    let all: Vec<String> = State::ALL.iter().map(|s| s.as_str().to_owned()).collect();
    for (dialect, sql) in [
        ("sqlite", include_str!("../migrations/sqlite/0001_jobs.sql")),
        (
            "postgres",
            include_str!("../migrations/postgres/0001_jobs.sql"),
        ),
    ] {
        assert_eq!(checked_states(sql), all, "{dialect}");
    }
}

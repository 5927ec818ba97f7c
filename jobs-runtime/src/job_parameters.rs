//! The rows of `jobs_job_parameter` that an enqueue call writes: the
//! parameters of each job it stored (not of a unique job's duplicate,
//! which was given its key's holder's id), checked first.

use jobs_core::{JobId, NewJob, Result, check_parameter};

/// Parameter rows as columns: job ids, names, JSON values.
#[derive(Debug, Default)]
pub(crate) struct ParameterRows<'a> {
    pub job_ids: Vec<i64>,
    pub names: Vec<&'a str>,
    pub values: Vec<&'a str>,
}

/// Whether any of `jobs` has parameters, after checking them all.
///
/// # Errors
/// [`Error::Config`](jobs_core::Error::Config) for a parameter
/// [`check_parameter`] refuses.
pub(crate) fn any<'a>(jobs: impl IntoIterator<Item = &'a NewJob>) -> Result<bool> {
    let mut any = false;
    for job in jobs {
        for (name, json) in &job.parameters {
            check_parameter(name, json)?;
            any = true;
        }
    }
    Ok(any)
}

/// The rows of `jobs`, stored with `ids` (in the same order); `stored`
/// says which were stored, `None` for all.
pub(crate) fn rows<'a>(
    jobs: impl IntoIterator<Item = &'a NewJob>,
    ids: &[JobId],
    stored: Option<&[bool]>,
) -> ParameterRows<'a> {
    let mut rows = ParameterRows::default();
    for (place, (job, id)) in jobs.into_iter().zip(ids).enumerate() {
        if stored.is_some_and(|stored| !stored[place]) {
            continue;
        }
        for (name, json) in &job.parameters {
            rows.job_ids.push(id.0);
            rows.names.push(name);
            rows.values.push(json);
        }
    }
    rows
}

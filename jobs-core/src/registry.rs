use std::fmt;

use crate::{BoxFuture, Error, Job, JobContext, JobResult, Result, RetryPolicy};

/// The decoded job, ready to run, or why its stored arguments do not decode.
pub type DecodeResult = std::result::Result<BoxFuture<'static, JobResult>, serde_json::Error>;

/// One job known to this binary: what `#[job]` submits to `inventory`.
///
/// Built by the `const fn` [`JobRegistration::of`], so that it can live in a
/// static; the [`Registry`] collects them all at startup.
pub struct JobRegistration {
    /// The job's stable name ([`Job::NAME`]).
    pub name: &'static str,
    /// Its default queue ([`Job::QUEUE`]).
    pub queue: &'static str,
    /// Its retry policy ([`Job::RETRY_POLICY`]).
    pub retry_policy: RetryPolicy,
    /// Its longest attempt ([`Job::TIMEOUT`]).
    pub timeout: Option<std::time::Duration>,
    /// The source file that defines it, for error messages.
    pub file: &'static str,
    /// The line in [`file`](Self::file).
    pub line: u32,
    /// Decodes stored JSON arguments and returns the attempt's future.
    pub decode: fn(JobContext, &str) -> DecodeResult,
}

impl JobRegistration {
    /// The registration of job type `J`, defined at `file:line`.
    pub const fn of<J: Job>(file: &'static str, line: u32) -> Self {
        JobRegistration {
            name: J::NAME,
            queue: J::QUEUE,
            retry_policy: J::RETRY_POLICY,
            timeout: J::TIMEOUT,
            file,
            line,
            decode: decode::<J>,
        }
    }

    /// `file:line` where the job is defined.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

impl fmt::Debug for JobRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobRegistration")
            .field("name", &self.name)
            .field("queue", &self.queue)
            .field("retry_policy", &self.retry_policy)
            .field("timeout", &self.timeout)
            .field("location", &self.location())
            .finish()
    }
}

fn decode<J: Job>(ctx: JobContext, args: &str) -> DecodeResult {
    let job: J = serde_json::from_str(args)?;
    Ok(Box::pin(job.perform(ctx)))
}

inventory::collect!(JobRegistration);

/// Every job this binary knows, by name.
///
/// Built once at server startup from what `#[job]` submitted to `inventory`,
/// sorted by name. Two jobs with one name are an error that names both places.
#[derive(Debug, Clone)]
pub struct Registry {
    jobs: Vec<&'static JobRegistration>,
}

impl Registry {
    /// Collects every `#[job]` in the binary.
    ///
    /// # Errors
    /// [`Error::DuplicateJobName`] when two jobs share a name.
    pub fn from_inventory() -> Result<Self> {
        Self::new(inventory::iter::<JobRegistration>)
    }

    /// A registry of the given jobs.
    ///
    /// # Errors
    /// [`Error::DuplicateJobName`] when two jobs share a name.
    pub fn new(jobs: impl IntoIterator<Item = &'static JobRegistration>) -> Result<Self> {
        let mut jobs: Vec<_> = jobs.into_iter().collect();
        jobs.sort_by(|a, b| a.name.cmp(b.name).then(a.location().cmp(&b.location())));
        if let Some(pair) = jobs.windows(2).find(|pair| pair[0].name == pair[1].name) {
            return Err(Error::DuplicateJobName {
                name: pair[0].name,
                first: pair[0].location(),
                second: pair[1].location(),
            });
        }
        Ok(Registry { jobs })
    }

    /// The job registered under `name`.
    pub fn get(&self, name: &str) -> Option<&'static JobRegistration> {
        self.jobs
            .binary_search_by(|job| job.name.cmp(name))
            .ok()
            .map(|index| self.jobs[index])
    }

    /// Every registered job, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &'static JobRegistration> + '_ {
        self.jobs.iter().copied()
    }

    /// How many jobs are registered.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Whether no job is registered.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never(_: JobContext, _: &str) -> DecodeResult {
        unreachable!("not run in these tests")
    }

    const fn registration(name: &'static str, line: u32) -> JobRegistration {
        JobRegistration {
            name,
            queue: "default",
            retry_policy: RetryPolicy::DEFAULT,
            timeout: None,
            file: "src/jobs.rs",
            line,
            decode: never,
        }
    }

    static B: JobRegistration = registration("b", 1);
    static A: JobRegistration = registration("a", 2);
    static A_AGAIN: JobRegistration = registration("a", 9);

    #[test]
    fn sorted_and_found_by_name() {
        let registry = Registry::new([&B, &A]).unwrap();
        let names: Vec<_> = registry.iter().map(|job| job.name).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(registry.get("b").unwrap().line, 1);
        assert!(registry.get("c").is_none());
    }

    #[test]
    fn duplicate_names_name_both_places() {
        let error = Registry::new([&A, &B, &A_AGAIN]).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("`a`"), "{message}");
        assert!(message.contains("src/jobs.rs:2"), "{message}");
        assert!(message.contains("src/jobs.rs:9"), "{message}");
    }
}

//! Job parameters: named JSON values stored with a job, apart from its
//! arguments, as Hangfire's job parameters. A client filter sets them at
//! enqueue (a tenant, a culture, a trace id), a server filter or the job
//! reads them (`ctx.parameter(..)`) and may set more
//! (`ctx.set_parameter(..)`); the dashboard shows them. They expire with
//! their job.

use std::collections::BTreeMap;

use crate::{Error, JobId, Result};

/// A job's parameters: name to JSON value, stored with the job apart from
/// its arguments, as Hangfire's job parameters. A client filter or
/// `EnqueueOptions::parameter` sets them at enqueue (a tenant, a culture,
/// a trace id); a server filter or the job reads them
/// ([`JobContext::parameter`](crate::JobContext::parameter)) and may set
/// more ([`JobContext::set_parameter`](crate::JobContext::set_parameter));
/// the dashboard shows them. They expire with their job.
pub type JobParameters = BTreeMap<String, String>;

/// The longest parameter name, in bytes.
pub const MAX_PARAMETER_NAME_LEN: usize = 200;

/// The longest parameter value (its JSON), in bytes: 64 KiB.
pub const MAX_PARAMETER_LEN: usize = 64 * 1024;

/// Parameters to set on a job, from
/// [`JobStorage::set_parameters`](super::JobStorage::set_parameters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetParametersParams {
    /// The job.
    pub job: JobId,
    /// The names and JSON values to set; a name already set gets the new
    /// value, the others are kept.
    pub parameters: JobParameters,
}

/// Checks a parameter before it is stored.
///
/// # Errors
/// [`Error::Config`] when the name is empty or longer than
/// [`MAX_PARAMETER_NAME_LEN`] or holds a NUL byte, or the value is not
/// JSON (a string is `"\"acme\""`, not `"acme"`) or is longer than
/// [`MAX_PARAMETER_LEN`].
pub fn check_parameter(name: &str, json: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_PARAMETER_NAME_LEN || name.contains('\0') {
        return Err(Error::Config(format!(
            "a job parameter's name must be 1 to {MAX_PARAMETER_NAME_LEN} bytes without NUL; got {:?}",
            name.chars().take(40).collect::<String>()
        )));
    }
    if json.len() > MAX_PARAMETER_LEN {
        return Err(Error::Config(format!(
            "job parameter `{name}` is {} bytes of JSON; at most {MAX_PARAMETER_LEN} are kept",
            json.len()
        )));
    }
    if let Err(error) = serde_json::from_str::<serde::de::IgnoredAny>(json) {
        return Err(Error::Config(format!(
            "job parameter `{name}` is not JSON ({error}); a string is stored quoted, as serde_json::to_string gives it"
        )));
    }
    Ok(())
}

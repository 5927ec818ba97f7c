//! Job parameters for PostgreSQL: rows of `jobs_job_parameter`.

use jobs_core::{Error, JobId, JobParameters, Result, SetParametersParams, check_parameter};

use super::PostgresStorage;

impl PostgresStorage {
    pub(super) async fn parameters_set(&self, params: SetParametersParams) -> Result<()> {
        for (name, json) in &params.parameters {
            check_parameter(name, json)?;
        }
        let (names, values): (Vec<&str>, Vec<&str>) = params
            .parameters
            .iter()
            .map(|(name, json)| (name.as_str(), json.as_str()))
            .unzip();
        // The job's row is read (and kept from being deleted) in the same
        // statement: an unknown job sets nothing.
        let job: Option<i64> = self
            .run(
                "setting job parameters",
                sqlx::query_scalar(self.sql(
                    "WITH job AS (
                         SELECT id FROM {s}.jobs_job WHERE id = $1 FOR KEY SHARE
                     ), set AS (
                         INSERT INTO {s}.jobs_job_parameter (job_id, name, value)
                         SELECT job.id, p.name, p.value
                         FROM job, unnest($2::text[], $3::text[]) AS p(name, value)
                         ON CONFLICT (job_id, name) DO UPDATE SET value = excluded.value
                     )
                     SELECT id FROM job",
                ))
                .bind(params.job.0)
                .bind(names)
                .bind(values)
                .fetch_optional(&self.pool),
            )
            .await?;
        match job {
            Some(_) => Ok(()),
            None => Err(Error::JobNotFound(params.job)),
        }
    }

    pub(super) async fn parameters_of(&self, id: JobId) -> Result<JobParameters> {
        let rows: Vec<(String, String)> = self
            .run(
                "reading job parameters",
                sqlx::query_as(
                    self.sql("SELECT name, value FROM {s}.jobs_job_parameter WHERE job_id = $1"),
                )
                .bind(id.0)
                .fetch_all(&self.pool),
            )
            .await?;
        Ok(rows.into_iter().collect())
    }
}

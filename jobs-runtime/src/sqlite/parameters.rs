//! Job parameters for SQLite: rows of `jobs_job_parameter`.

use jobs_core::{Error, JobId, JobParameters, Result, SetParametersParams, check_parameter};

use super::SqliteStorage;
use crate::sql_error::storage_error;

impl SqliteStorage {
    pub(super) async fn parameters_set(&self, params: SetParametersParams) -> Result<()> {
        const OP: &str = "setting job parameters";
        for (name, json) in &params.parameters {
            check_parameter(name, json)?;
        }
        let (mut tx, _) = self.write(OP).await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM jobs_job WHERE id = ?1)")
                .bind(params.job.0)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| storage_error(OP, e))?;
        if !exists {
            return Err(Error::JobNotFound(params.job));
        }
        let parameters =
            serde_json::to_string(&params.parameters).map_err(|e| Error::storage(OP, e))?;
        sqlx::query(
            "INSERT INTO jobs_job_parameter (job_id, name, value)
             SELECT ?1, key, value FROM json_each(?2) WHERE true
             ON CONFLICT (job_id, name) DO UPDATE SET value = excluded.value",
        )
        .bind(params.job.0)
        .bind(parameters)
        .execute(&mut *tx)
        .await
        .map_err(|e| storage_error(OP, e))?;
        tx.commit().await.map_err(|e| storage_error(OP, e))
    }

    pub(super) async fn parameters_of(&self, id: JobId) -> Result<JobParameters> {
        const OP: &str = "reading job parameters";
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT name, value FROM jobs_job_parameter WHERE job_id = ?1")
                .bind(id.0)
                .fetch_all(&self.reader)
                .await
                .map_err(|e| storage_error(OP, e))?;
        Ok(rows.into_iter().collect())
    }
}

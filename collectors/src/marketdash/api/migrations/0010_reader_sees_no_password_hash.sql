-- Grafana's read-only login (grafana_reader, created by the deployment before the API migrates) reads
-- every table of the schema, except that of users it sees who they are and never their password hashes:
-- any Grafana editor can run SQL as that login. The deployment's grants leave `users` to this migration.
DO $reader$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'grafana_reader') THEN
        REVOKE SELECT ON users FROM grafana_reader;
        GRANT SELECT (id, username) ON users TO grafana_reader;
    END IF;
END
$reader$;

-- Running jobs per tenant, for the running limit checked when a job is created.
CREATE INDEX jobs_tenant_running ON jobs (tenant) WHERE state = 'running';

"""The Dagster code location: Definitions plus jobs, schedules and sensors."""

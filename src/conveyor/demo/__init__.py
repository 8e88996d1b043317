"""The demo: a worker with a few job types, a realistic mix of jobs, and a live view."""

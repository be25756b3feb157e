"""HTTP API: counts, devices, criteria, reports and evidence for auditors."""

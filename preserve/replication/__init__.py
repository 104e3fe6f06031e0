"""Replication: verified copies to S3-compatible stores and file systems, remote audits, restore, repair, NDSA levels."""

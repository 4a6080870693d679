"""Point-in-time correct training sets: RDS labels x compacted features, with a lineage manifest."""

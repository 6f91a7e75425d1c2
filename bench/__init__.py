"""Load and fault scripts (`make bench`)."""

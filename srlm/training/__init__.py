"""Training: one Lightning module for every preference and supervised loss."""

"""Reward sources: where the scores of responses come from."""

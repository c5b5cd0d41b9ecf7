"""Solver node: bidding, training runner, checkpoint server and dispute defence."""

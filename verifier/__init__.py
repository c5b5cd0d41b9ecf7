"""Verifier node: audit sampler, segment replay, dispute play and arbitration duty."""

"""veritrain's shared protocol library (DESIGN.md §2–3).

Everything every node needs to speak the same bytes as the contracts:

- :mod:`protocol.errors`    exception hierarchy (all subclass :class:`~protocol.errors.VeritrainError`)
- :mod:`protocol.paths`     repository, forge ``out/`` and Foundry tool discovery
- :mod:`protocol.build`     ``ensure_forge_build()``: compile the contracts when the artifacts are stale
- :mod:`protocol.artifacts` ABI and bytecode from forge artifacts (the one source of ABIs)
- :mod:`protocol.merkle`    RFC 9162 trees over pymerkle, plus an independent pure-Python reference
- :mod:`protocol.eip712`    the ``JobOrder`` and ``Bid`` typed data: digest, signing, recovery
- :mod:`protocol.revert`    custom-error revert data → error name and arguments
- :mod:`protocol.tx`        sign locally, send, wait, decode reverts
- :mod:`protocol.atomic`    atomic file writes (temp file + rename)
- :mod:`protocol.deploy`    deploy and bind the five contracts; deployment JSON
- :mod:`protocol.anvil`     a local anvil devnet as a context manager

Nothing here imports ``solver``, ``verifier`` or ``marketplace_api``.
"""

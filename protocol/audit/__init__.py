"""Independent audit of disputes and jobs from raw chain data (rule ids in docs/audit.md).

- :mod:`protocol.audit.record`  read a dispute/job from an RPC node into a JSON record (export, reload)
- :mod:`protocol.audit.dispute` the dispute rules (descent, leaf proofs, committee, votes, clocks, settlement)
- :mod:`protocol.audit.job`     the job rules (signatures, escrow/stake, commit, audit draw, settlement)
- :mod:`protocol.audit.verdict` named checks and the verdict
"""

from protocol.audit.dispute import audit_dispute
from protocol.audit.job import audit_job
from protocol.audit.record import (
    AuditReadError,
    DisputeRecord,
    JobRecord,
    load_record,
    read_dispute,
    read_job,
    save_record,
)
from protocol.audit.verdict import CheckResult, Verdict

__all__ = [
    "AuditReadError",
    "CheckResult",
    "DisputeRecord",
    "JobRecord",
    "Verdict",
    "audit_dispute",
    "audit_job",
    "load_record",
    "read_dispute",
    "read_job",
    "save_record",
]

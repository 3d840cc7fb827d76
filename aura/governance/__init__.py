"""Governance: what may run and what is recorded about it. Imports ``core`` only.

- ``_memory``: ``ctx.memory``, a journaled key -> value map.
- ``_audit``: the tamper-evident audit chain and its verification.
- ``_tokens``: signed ``AgentIdentity`` / ``ExecutionToken`` and the runtime key.
- ``_tools``: ``@aura.tool`` definitions and their argument schemas.
- ``_gateway``: the tool gateway that checks both tokens before a tool runs.
"""

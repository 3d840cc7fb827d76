"""The vocabulary every room of aura shares, importing no other room.

- ``_errors``: the ``AuraError`` tree.
- ``_definitions``: ``@aura.mission`` / ``@aura.step`` and the definitions they attach.
- ``_retry``: ``RetryPolicy``. ``_budget``: ``Budget``, cost checks.
- ``_lifecycle``: mission states and the transition table.
- ``_messages``: what a mission journals (mailbox messages, transitions,
  recovery markers) and their evolution rules.
- ``_attempts``: a step attempt's context (``current_step``, ``heartbeat``,
  ``report_cost``, ``StepJob``).
- ``_logging``: the structlog loggers a runtime may use.
"""

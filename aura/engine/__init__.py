"""The mission engine. Imports ``core`` and ``governance``.

- ``_runtime``: ``Runtime``, the root of the missions' supervision tree over a
  data directory; ``_ownership``: the directory lock (one owner at a time).
- ``_host``: ``MissionHost``, what a mission actor needs of its runtime.
- ``_mission_actor``: the durable actor that drives mission code.
- ``_context``: ``MissionContext`` and the awaitables mission code gets.
- ``_steps``, ``_pool``: running step attempts off the actor; ``_delivery``:
  their outcomes back to the missions, batched into group commits.
- ``_commands``: start/signal/cancel/... from other processes, through the log.
- ``_compactor``: archiving finished runs and missions.
"""

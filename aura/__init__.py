"""aura: an embeddable runtime that makes AI-agent work durable.

The mission runtime is being built on top of :mod:`actors` and
:mod:`eventstore`; today this package holds the ``aura`` console script.
"""

__all__: list[str] = []

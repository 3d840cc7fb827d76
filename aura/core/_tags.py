"""Tags (search attributes) a user files a mission under, as journaled."""

from __future__ import annotations

from ._errors import AuraError

MAX_TAGS = 32


def check_tags(tags: object) -> dict[str, str]:
    """``tags`` as journaled, or one clear error naming what is wrong."""
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise AuraError(f"tags= must be a dict of str to str, got {type(tags).__name__}")
    if len(tags) > MAX_TAGS:
        raise AuraError(f"tags= takes at most {MAX_TAGS} tags, got {len(tags)}")
    for key, value in tags.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 64 or "=" in key:
            raise AuraError(f"a tag name is a str of 1-64 characters without '=', got {key!r}")
        if not isinstance(value, str) or len(value) > 256:
            raise AuraError(f"tag {key!r}: the value must be a str of at most 256 characters")
    return dict(tags)

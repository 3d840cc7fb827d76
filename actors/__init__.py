"""actors: supervision trees and durable actors on pykka."""

__all__: list[str] = []

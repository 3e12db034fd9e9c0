"""OpenAI-compatible HTTP server for AlignBeam (`alignbeam serve`).

Kept out of `alignbeam/__init__` so that importing the library never pulls in FastAPI: only the server needs it.
"""

from alignbeam.server.app import create_app
from alignbeam.server.queue import GenerationQueue, QueueClosed, QueueFull
from alignbeam.server.runner import BackgroundServer, run

__all__ = ["BackgroundServer", "GenerationQueue", "QueueClosed", "QueueFull", "create_app", "run"]

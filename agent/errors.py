"""Domain exceptions. Every message says what went wrong and what to do next."""

from __future__ import annotations


class VistaRAGError(Exception):
    """Base class for errors a user can act on."""


class ModelMismatchError(VistaRAGError):
    """The knowledge base was built with other models than the ones configured now."""


class IngestError(VistaRAGError):
    """One input file could not be ingested; the message names the file and the problem."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class KnowledgeBaseNotFound(VistaRAGError):
    """The named knowledge base does not exist."""


class SynthesisUnavailable(VistaRAGError):
    """The configured vision-language model could not be reached after retries."""


class StoreBusyError(VistaRAGError):
    """The embedded index is locked by another process."""

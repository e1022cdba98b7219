"""Lexical sparse vectors: moved to ``vistarag.agent.index.lexical`` (re-exported here)."""

from vistarag.agent.index.lexical import (  # noqa: F401
    AVG_DOC_TERMS,
    LEXICAL_SCHEME,
    LEXICAL_VECTOR,
    document_vector,
    query_vector,
    term_index,
)

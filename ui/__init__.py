"""Front ends: the ``vistarag`` CLI and the Chainlit app (they call the turn runner)."""

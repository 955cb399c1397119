"""What a search reports when the shot it is asked about is not there.

The search itself is the query engine's (`indexes.query`); the API, the dashboard and the CLI
import this error from here.
"""

from __future__ import annotations


class UnknownShotError(LookupError):
    pass

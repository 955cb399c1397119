"""Two processes meeting an empty database at once.

A scheduler pair, two runs, a service and a run: each creates the tables it
needs on first use, and whichever comes second can fail with 'already exists'
or 'database is locked' although nothing is wrong. Such a step is simply done
again after the other one has finished.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

T = TypeVar("T")
ATTEMPTS = 6


def tolerate_first_use_race(step: Callable[[], T]) -> T:
    """Run `step` (creating tables, namespaces, migrations), again if another process raced it."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return step()
        except (IntegrityError, OperationalError, ProgrammingError):
            if attempt == ATTEMPTS:
                raise
            time.sleep(random.uniform(0.2, 0.6) * attempt)
    raise AssertionError("unreachable")

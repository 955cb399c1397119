"""Login attempts, limited per client: a token cannot be guessed at the speed of the network.

After `max_failures` wrong tokens from one client within `window` seconds, its next attempts,
right or wrong, are answered 429 with the seconds to wait, until the oldest failure leaves the
window. A right token clears the client's failures. Memory is bounded: clients whose failures
have all left the window are forgotten, and at most `max_clients` are tracked (the oldest
forgotten first), so a flood of addresses cannot grow the service.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_FAILURES = 5
WINDOW_SECONDS = 60.0
MAX_CLIENTS = 10_000


class LoginThrottle:
    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        window: float = WINDOW_SECONDS,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures, self.window, self.max_clients, self.clock = (
            max_failures,
            window,
            max_clients,
            clock,
        )
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int | None:
        """Seconds the client must wait before trying again; None when it may try now."""
        with self._lock:
            recent = self._recent(client)
            if len(recent) < self.max_failures:
                return None
            return max(1, math.ceil(recent[0] + self.window - self.clock()))

    def failed(self, client: str) -> None:
        with self._lock:
            failures = self._recent(client)
            failures.append(self.clock())
            self._failures[client] = failures
            self._failures.move_to_end(client)
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)

    def _recent(self, client: str) -> deque[float]:
        """The client's failures still in the window (a client with none is forgotten)."""
        failures = self._failures.get(client, deque())
        cutoff = self.clock() - self.window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        if not failures:
            self._failures.pop(client, None)
        return failures

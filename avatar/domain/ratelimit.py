"""A sliding-window rate limiter keyed by any string (an IP, an account)."""
from __future__ import annotations

import threading
import time
from collections import defaultdict, deque


class RateLimiter:
    """In-process limiter: `allow(key)` is False once `limit` hits fell in the last `window` seconds.

    Per process: behind several app processes each enforces its own window (the per-account
    lockout in domain.accounts is in the database and holds across processes).
    """

    def __init__(self, limit: int, window: float = 60.0, clock=time.monotonic):
        self.limit, self.window, self.clock = limit, window, clock
        self._hits: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = self.clock()
        with self._lock:
            q = self._hits[key]
            while q and q[0] <= now - self.window:
                q.popleft()
            if len(q) >= self.limit:
                return False
            q.append(now)
            if len(self._hits) > 100_000:  # bound memory under a flood of distinct keys
                for k in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
                    del self._hits[k]
            return True

    def state(self, key: str) -> tuple[int, int, int]:
        """(limit, hits left in the window, seconds until the oldest hit leaves it) for key: what
        the RateLimit-* header fields tell a client."""
        now = self.clock()
        with self._lock:
            q = self._hits.get(key)
            live = [t for t in q if t > now - self.window] if q else []
        reset = max(0, int(live[0] + self.window - now) + 1) if live else 0
        return self.limit, max(0, self.limit - len(live)), reset

    def retry_after(self, key: str) -> int:
        with self._lock:
            q = self._hits.get(key)
            if not q:
                return 0
            return max(1, int(q[0] + self.window - self.clock()) + 1)

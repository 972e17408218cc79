"""A free TCP port on loopback, for the servers the tests and benchmarks start in another process
(`avatar serve`, moto): they must be told a port. In-process servers bind port 0 instead, which
cannot race another process for the port between the check and the bind."""
import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

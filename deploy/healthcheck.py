"""Container health probe: exit 0 when this container's CPMS answers 200 on PATH (default /livez).

Usage: python healthcheck.py [/livez|/readyz]. One image runs `cpms run all` or one service, each on
its own listen address, so every configured address is tried; the one that listens decides."""
from __future__ import annotations

import sys
import urllib.error
import urllib.request

from shared.config import Settings, parse_listen_addr


def listen_addresses(settings: Settings) -> list[tuple[str, int]]:
    fields = sorted(name for name in Settings.model_fields if name.endswith("listen_addr"))
    addresses = []
    for field in fields:
        host, port = parse_listen_addr(getattr(settings, field))
        addresses.append(("127.0.0.1" if host in ("0.0.0.0", "") else host, port))
    return addresses


def probe(host: str, port: int, path: str) -> bool | None:
    """True: 200. False: it answered otherwise. None: nothing listens there."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=2) as response:
            return response.status == 200
    except urllib.error.HTTPError:
        return False
    except (urllib.error.URLError, OSError):
        return None


def main(argv: list[str]) -> int:
    path = argv[0] if argv else "/livez"
    for host, port in listen_addresses(Settings.from_env()):
        answer = probe(host, port, path)
        if answer is not None:
            print(f"{host}:{port}{path} {'ok' if answer else 'failing'}")
            return 0 if answer else 1
    print(f"nothing answers {path} on any listen address", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

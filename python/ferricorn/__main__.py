"""Console entry point: hands ``sys.argv`` to the Rust core and exits with its code."""

from __future__ import annotations

import sys


def main() -> None:
    from ferricorn._ferricorn import run

    sys.exit(run(sys.argv))


if __name__ == "__main__":
    main()

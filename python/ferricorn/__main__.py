"""Console entry point: hands ``sys.argv`` to the Rust core and exits with its code
(``ferricorn ctl ...`` goes to the control-socket client instead)."""

from __future__ import annotations

import sys


def main() -> None:
    # the control-socket client is plain Python and needs no server settings
    if sys.argv[1:2] == ["ctl"]:
        from ferricorn._ctl import main as ctl

        sys.exit(ctl(sys.argv[2:]))
    from ferricorn._ferricorn import run

    sys.exit(run(sys.argv))


if __name__ == "__main__":
    main()

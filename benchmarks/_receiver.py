"""An OTLP receiver in its own process, so that the exporter under test has this process's GIL to itself.

Protocol on stdin/stdout, one line each: it prints its URL first; then ``count`` prints the spans accepted so
far, ``first`` prints when the first span request arrived, ``clear`` forgets them, end of input stops it.
"""

from __future__ import annotations

import os
import subprocess
import sys

from aither.testing import OTLPReceiver


class ReceiverProcess:
    """benchmarks/_receiver.py in a subprocess: decoding and HTTP handling stay out of the measured process."""

    def __init__(self) -> None:
        script = os.path.abspath(__file__)
        self.process = subprocess.Popen(
            [sys.executable, script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()

    def ask(self, command: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(60)


def main() -> None:
    with OTLPReceiver() as receiver:
        print(receiver.url, flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "count":
                print(len(receiver.spans), flush=True)
            elif command == "first":
                # time.monotonic() when the first span request arrived (CLOCK_MONOTONIC is system-wide on Linux).
                arrivals = [r.received_at for r in receiver.requests]
                print(min(arrivals) if arrivals else 0.0, flush=True)
            elif command == "clear":
                receiver.clear()
                print("ok", flush=True)


if __name__ == "__main__":
    main()

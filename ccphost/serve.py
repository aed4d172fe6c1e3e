"""Serve ccphost with uvicorn and the WebSocket settings its sockets need:

    python -m ccphost.serve [APP] [uvicorn options]

APP defaults to ``ccphost.asgi:application``; any uvicorn option may follow (``--host``,
``--port``, ``--workers``, ...), and the caller's wins over ccphost's own. ``make run``,
``make run-scaled``, the benchmark and the tests that start servers all start it so. To run
uvicorn directly, pass the same two options (WEBSOCKET_FLAGS); gunicorn's uvicorn worker
takes them as its ``CONFIG_KWARGS`` (WEBSOCKET_SETTINGS).

Two of uvicorn's defaults changed (docs/performance.md, ninth measurement):

- **No per-message compression.** Browsers offer permessage-deflate and uvicorn accepts it
  by default: each socket then keeps zlib state (45 KiB of the server's 93 KiB per socket on
  the project's VM), and every frame is compressed, 11% of the event loop's time while
  sockets connect. A CCP frame is about 2 kB of JSON, a few times a minute per agent: the
  bandwidth saved is not worth it. Measured with 1,000 sockets, a process without it
  delivered 5-15% more snapshots a second, and held 10,000 sockets in half the memory.
- **Frames of at most WEBSOCKET_MAX_BYTES** (uvicorn: 16 MiB, read whole before any
  consumer could refuse it). The largest frame a ccphost socket takes is an event-stream
  frame of 65,536 characters (``event_consumer.MAX_FRAME_CHARS``), at most 4 bytes each in
  UTF-8; a larger one closes the socket with 1009 (message too big)."""

import sys

from uvicorn.main import main as uvicorn

APPLICATION = "ccphost.asgi:application"
WEBSOCKET_MAX_BYTES = 4 * 65536
# As uvicorn.Config's arguments (for a server started in-process: the browser tests') ...
WEBSOCKET_SETTINGS = {"ws_per_message_deflate": False, "ws_max_size": WEBSOCKET_MAX_BYTES}
# ... and as its command line's.
WEBSOCKET_FLAGS = ["--ws-per-message-deflate", "false", "--ws-max-size", str(WEBSOCKET_MAX_BYTES)]


def command_line(argv: list[str]) -> list[str]:
    """uvicorn's arguments for ``python -m ccphost.serve`` given ``argv``: the application
    first, then ccphost's WebSocket flags, then the caller's options (the last of an option
    given twice wins)."""
    app, options = (argv[0], argv[1:]) if argv and not argv[0].startswith("-") else (APPLICATION, argv)
    return [app, *WEBSOCKET_FLAGS, *options]


def main(argv: list[str] | None = None) -> None:
    uvicorn.main(command_line(sys.argv[1:] if argv is None else argv), prog_name="python -m ccphost.serve")


if __name__ == "__main__":
    main()

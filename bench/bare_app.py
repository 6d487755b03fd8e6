"""Baseline for bench/poll.py: the device poll route with no work behind it.

One FastAPI route, ``GET /api/v1/device/{uuid}/state``, that answers 304 straight away (no
database, no authentication), served by uvicorn exactly as ``fleetwave serve`` serves the real
application: one process, one worker, same log level, ``proxy_headers=False``. The gap between
the two is what fleetwave's own work on the 304 path costs.

    .venv/bin/python bench/bare_app.py --port 3901 --log-level warning
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI, Request, Response

ETAG = '"00000000000000000000000000000000"'

app = FastAPI(title="bare poll baseline")


@app.get("/api/v1/device/{uuid}/state")
async def poll_target_state(uuid: str, request: Request) -> Response:
    # The same headers fleetwave sends with its 304; echo the client's tag when it sent one.
    etag = request.headers.get("if-none-match") or ETAG
    return Response(status_code=304, headers={"ETag": etag, "Cache-Control": "no-cache"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3901)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    # Mirrors fleetwave.cli.serve: uvicorn.run(app, host, port, log_level, proxy_headers=False).
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, proxy_headers=False)


if __name__ == "__main__":
    main()

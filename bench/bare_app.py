"""Baseline for bench/poll.py and bench/report.py: the device routes with no work behind them.

Two FastAPI routes served by uvicorn exactly as ``fleetwave serve`` serves the real
application (one process, one worker, same log level, ``proxy_headers=False``), so the gap
between the two is what fleetwave's own work costs:

- ``GET /api/v1/device/{uuid}/state`` answers 304 straight away (no database, no
  authentication): the poll of a device whose target has not changed;
- ``PATCH /api/v1/device/state`` reads the body, parses it (``json.loads``) and answers
  ``{"status": "ok", "uuid": ...}`` with the uuid the report is keyed by: a state report,
  parsed and thrown away.

    .venv/bin/python bench/bare_app.py --port 3901 --log-level warning
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response

ETAG = '"00000000000000000000000000000000"'

app = FastAPI(title="bare device-protocol baseline")


@app.get("/api/v1/device/{uuid}/state")
async def poll_target_state(uuid: str, request: Request) -> Response:
    # The same headers fleetwave sends with its 304; echo the client's tag when it sent one.
    etag = request.headers.get("if-none-match") or ETAG
    return Response(status_code=304, headers={"ETag": etag, "Cache-Control": "no-cache"})


@app.patch("/api/v1/device/state")
async def report_current_state(request: Request) -> dict[str, Any]:
    report = json.loads(await request.body())
    return {"status": "ok", "uuid": next(iter(report))}


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

#!/bin/sh
# Role by command: api | worker | migrate; anything else runs as given (e.g. `sh`).
set -eu
role="${1:-api}"
case "$role" in
  api) shift || true; exec python -m starter.api "$@" ;;
  worker) shift || true; exec python -m worker "$@" ;;
  migrate) shift || true; exec alembic upgrade head "$@" ;;
  *) exec "$@" ;;
esac

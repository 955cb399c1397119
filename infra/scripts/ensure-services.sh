#!/usr/bin/env bash
# Services the test suite talks to for real. Nothing is needed yet beyond Python;
# later issues add PostgreSQL and Chromium here.
set -euo pipefail

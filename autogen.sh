#!/bin/sh
# Generates configure and the Makefile.in files (never committed).
set -e
cd "$(dirname "$0")"
autoreconf -fi

#!/bin/sh
# Runs briefly, then fails. exec keeps the instance a single process.
echo "flapper: starting, will crash"
exec sh -c 'sleep 0.5; echo "flapper: crashing" >&2; exit 3'

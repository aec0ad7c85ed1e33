#!/bin/sh
echo "sleeper: $PLUGS_PLUG/$PLUGS_INSTANCE started"
exec sleep 100000

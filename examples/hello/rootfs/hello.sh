#!/bin/sh
echo "hello from bale"

#!/bin/sh
echo "$GREETING from pare"

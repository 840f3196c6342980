#!/usr/bin/env bash
# Test set-up: the schedule tests check every OnCalendar= the workbook writes with `systemd-analyze calendar`
# (Debian's systemd package). Install it when missing.
set -euo pipefail
if command -v systemd-analyze >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's systemd (for systemd-analyze) for the schedule tests ..." >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
else
  echo "systemd-analyze is missing and cannot be installed here (needs root and apt-get); the OnCalendar checks will skip" >&2
fi

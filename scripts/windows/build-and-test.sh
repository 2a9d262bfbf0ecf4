#!/usr/bin/env bash
# The Windows agent in CI: installs the cross toolchain and Wine if missing, builds
# gururmm-agent.exe (x86_64-pc-windows-gnu, release), tries the Windows 7 build
# (x86_64-win7-windows-gnu), and runs scripts/windows/wine_test.py: the .exe under Wine
# against the real Linux server on loopback. See docs/WINDOWS.md.
#
# Cached between runs on the same machine (outside the clone), so a second run rebuilds little:
#   $GURURMM_WIN_CACHE (default /var/cache/gururmm)/target-win   cargo target dir of both builds
#   $GURURMM_WIN_CACHE/builds       the agent .exe and the same built as version 99.0.0
#   $GURURMM_WIN_CACHE/src          a mirror of the sources, updated by content (rsync -c,
#                                   without -t), so a fresh clone does not look new to cargo:
#                                   files that did not change keep their old path and time
#   $GURURMM_WIN_CACHE/wineprefix   the Wine prefix, with the shim
# Runs are serialised on $GURURMM_WIN_CACHE/lock.
#
# Environment: GURURMM_WIN_SKIP_WIN7=1 skips the Windows 7 build.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

cache=${GURURMM_WIN_CACHE:-/var/cache/gururmm}
target_dir=$cache/target-win
prefix=$cache/wineprefix
wine=/usr/lib/wine/wine64
mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9

step() { printf '== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }
t0=$(date +%s)

# --- packages (Debian's Rust 1.96 with its std source: the rustup toolchain cannot build-std)
step "Windows toolchain and Wine"
missing=()
for pkg in rust-web-src rustc-web cargo-web gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64 wine64 rsync; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's toolchain, not the rustup one that comes first on PATH.
export RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$target_dir
# These builds are for the tests under Wine, not for shipping: no LTO and dependencies at
# opt-level 1 (the agent crate keeps its "s") make a cold build much shorter. Shipped builds
# come from the plain release profile.
export CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_OPT_LEVEL=1
cargo_win=/usr/bin/cargo
"$RUSTC" --version

src=$cache/src
mkdir -p "$src"
rsync -rlpc --delete --exclude /target --exclude /.git --exclude node_modules \
  --exclude /dashboard "$repo/" "$src/"
cd "$src"

# --- the agent for Windows 10 / Server 2016 and later
step "build gururmm-agent.exe (x86_64-pc-windows-gnu, release)"
"$cargo_win" build --release --locked -p gururmm-agent \
  -Zbuild-std=std,panic_abort --target x86_64-pc-windows-gnu
# Copied out: the next build below overwrites the target folder's .exe.
builds=$cache/builds
mkdir -p "$builds"
exe=$builds/gururmm-agent.exe
cp "$target_dir/x86_64-pc-windows-gnu/release/gururmm-agent.exe" "$exe"
ls -l "$exe"

# --- the same agent as version 99.0.0, for the service's self-update (recompiles the agent
# crate only)
step "build gururmm-agent.exe as version 99.0.0 (the self-update's next build)"
GURURMM_AGENT_VERSION=99.0.0 "$cargo_win" build --release --locked -p gururmm-agent \
  -Zbuild-std=std,panic_abort --target x86_64-pc-windows-gnu
next_exe=$builds/gururmm-agent-99.0.0.exe
cp "$target_dir/x86_64-pc-windows-gnu/release/gururmm-agent.exe" "$next_exe"

# --- the Windows 7 / Server 2008 R2 build (tier 3 target; std built from source)
legacy_args=()
if [ "${GURURMM_WIN_SKIP_WIN7:-0}" != 1 ]; then
  step "build gururmm-agent.exe for Windows 7 (x86_64-win7-windows-gnu, release)"
  # cc (for ring's C code) does not know this target and would use the Linux compiler.
  export CC_x86_64_win7_windows_gnu=x86_64-w64-mingw32-gcc
  export AR_x86_64_win7_windows_gnu=x86_64-w64-mingw32-ar
  if "$cargo_win" build --release --locked -p gururmm-agent \
    -Zbuild-std=std,panic_abort --target x86_64-win7-windows-gnu; then
    win7_exe=$target_dir/x86_64-win7-windows-gnu/release/gururmm-agent.exe
    ls -l "$win7_exe"
    legacy_args=(--legacy-agent "$win7_exe")
  else
    echo "FAIL the Windows 7 build did not build (see above)"
    exit 1
  fi
fi

# --- Wine prefix (persistent) with the ProcessPrng shim, a test fixture that is never shipped
step "Wine prefix $prefix"
export WINEPREFIX=$prefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
if [ ! -f "$prefix/system.reg" ]; then
  # Prints a harmless error about syswow64 (no 32-bit Wine here).
  "$wine" wineboot -i >/dev/null 2>&1 || true
  /usr/lib/wine/wineserver -w
fi
shim_src=$src/tools/wine/processprng_shim.c
shim=$cache/bcryptprimitives.dll
if [ ! -f "$shim" ] || [ "$shim_src" -nt "$shim" ]; then
  x86_64-w64-mingw32-gcc -shared -O2 -o "$shim" "$shim_src" -ladvapi32
fi
cp "$shim" "$prefix/drive_c/windows/system32/bcryptprimitives.dll"

# --- the real server, built for Linux by the normal toolchain (a no-op after scripts/test.sh)
step "build gururmm-server (Linux)"
cd "$repo"
(unset RUSTC RUSTC_BOOTSTRAP CARGO_TARGET_DIR; cargo build --locked -q -p gururmm-server)
server=$repo/target/debug/gururmm-server

step "Windows tests under Wine"
status=0
python3 scripts/windows/wine_test.py --agent "$exe" --server "$server" \
  --wineprefix "$prefix" --next-agent "$next_exe" "${legacy_args[@]}" || status=$?
/usr/lib/wine/wineserver -k 2>/dev/null || true
echo "Windows step took $(($(date +%s) - t0)) s"
exit $status

# scripts/deps-env.sh - sourced (from the repository root) by the scripts
# that build on a GPU machine with no network: scripts/gpu.sh and the
# dev/ workbench scripts. When pkg-config cannot find cJSON, PCRE2 and
# utf8proc and a folder .deps/ holds their .deb files (fetched elsewhere
# with `apt-get download`), they are unpacked under .deps/root, pkg-config
# and the loader are pointed there, and the array cmake_extra carries the
# pkg-config to use (pass "${cmake_extra[@]}" to cmake).
cmake_extra=()
if ! pkg-config --exists libcjson libpcre2-8 libutf8proc 2>/dev/null && ls .deps/*.deb > /dev/null 2>&1; then
  root=$PWD/.deps/root
  mkdir -p "$root"
  for f in .deps/*.deb; do dpkg -x "$f" "$root"; done
  libdir=$root/usr/lib/x86_64-linux-gnu
  export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export PKG_CONFIG_LIBDIR=$libdir/pkgconfig:$root/usr/share/pkgconfig
  export PKG_CONFIG_SYSROOT_DIR=$root
  if command -v pkg-config > /dev/null; then pc=$(command -v pkg-config); else pc=$root/usr/bin/pkgconf; fi
  cmake_extra+=("-DPKG_CONFIG_EXECUTABLE=$pc")
  echo "using build dependencies unpacked from .deps/ ($pc)"
fi

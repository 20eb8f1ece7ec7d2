# qr_addon.node: qr_addon.c plus the wpool-napi kit's C half (wpool_napi.c),
# taken from the installed wpool: `pkg-config --variable=napidir wpool`, or,
# where that variable is missing (a wpool built before it existed), from the
# directory in the environment variable WPOOL_NAPI_DIR (e.g. ../../node/src).
# wpool, libqrencode and libpng come from pkg-config; the rpath finds a wpool
# installed under a private prefix at run time.
{
  "variables": {
    "napidir": "<!(pkg-config --variable=napidir wpool | grep . || echo \"${WPOOL_NAPI_DIR:?neither pkg-config --variable=napidir wpool nor WPOOL_NAPI_DIR names the wpool-napi sources}\")",
  },
  "targets": [{
    "target_name": "qr_addon",
    # wpool_napi_kit.c #includes <(napidir)/wpool_napi.c.
    "sources": ["qr_addon.c", "qr_matrix.c", "qr_png.c", "wpool_napi_kit.c"],
    "include_dirs": ["<(napidir)"],
    "cflags": [
      "-std=c11", "-Wall", "-Wextra", "-Werror",
      "<!@(pkg-config --cflags wpool libqrencode libpng)",
    ],
    "defines": ["NAPI_VERSION=8"],
    "libraries": [
      "<!@(pkg-config --libs wpool libqrencode libpng)",
      "-pthread", "-ldl",
      "-Wl,-rpath,<!(pkg-config --variable=libdir wpool)",
    ],
  }],
}

/* SPDX-License-Identifier: MIT */
/*
 * The wpool-napi kit's C half, compiled into this addon. binding.gyp puts
 * the kit's directory (pkg-config --variable=napidir wpool, or
 * WPOOL_NAPI_DIR) on the include path; compiling it through this file keeps
 * gyp's object files inside build/ wherever the kit is installed (given its
 * path directly, gyp's make generator mirrors the path of the source).
 */
#include "wpool_napi.c"
#include "wpool_napi_run.c"

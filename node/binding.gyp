# The package's addon, built by node-gyp (npm install runs it). The kit's
# sources are this package's src/wpool_napi.[ch]; wpool's own flags and
# library come from pkg-config, with an rpath to wpool's libdir so that a
# wpool installed under a private prefix is found at run time. Offline:
# npm_config_nodedir=/usr (Node's headers from the distribution, no download).
# An addon of your own that takes the kit from the installed library instead:
# docs/node.md.
{
  "targets": [{
    "target_name": "wpool_tasks",
    "sources": ["src/wpool_napi.c", "src/wpool_napi_run.c", "src/tasks.c"],
    "cflags": ["<!@(pkg-config --cflags wpool)", "-std=gnu11", "-Wall", "-Wextra", "-Werror"],
    "libraries": [
      "<!@(pkg-config --libs wpool)",
      "-Wl,-rpath,<!(pkg-config --variable=libdir wpool)"
    ],
    "defines": ["NAPI_VERSION=8"]
  }]
}

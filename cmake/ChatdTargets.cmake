# Build flags as an interface target linked into every first-party target, and the
# chatd_add_plugin() function that builds a plugin the way the host expects.

add_library(chatd_build_flags INTERFACE)
target_compile_definitions(chatd_build_flags INTERFACE _POSIX_C_SOURCE=200809L)
target_compile_options(chatd_build_flags INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes
  -Wcast-qual -Wwrite-strings -Wundef -Wvla)
if(CHATD_WERROR)
  target_compile_options(chatd_build_flags INTERFACE -Werror)
endif()
if(CHATD_SANITIZE)
  target_compile_options(chatd_build_flags INTERFACE
    -fsanitize=${CHATD_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(chatd_build_flags INTERFACE -fsanitize=${CHATD_SANITIZE})
  # Keep plugins mapped at exit so a leak inside one is reported with its function name.
  target_compile_definitions(chatd_build_flags INTERFACE CHATD_KEEP_PLUGINS_MAPPED)
endif()

# chatd_add_plugin() itself is shared with installed chatd packages.
set(CHATD_PLUGIN_BUILD_FLAGS chatd_build_flags)
include(${CMAKE_CURRENT_LIST_DIR}/ChatdPlugin.cmake)

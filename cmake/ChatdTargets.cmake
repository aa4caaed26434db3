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

# chatd_add_plugin(NAME SOURCES a.c b.c ... [OUTPUT_DIR dir])
# Builds NAME.so with hidden visibility, so its one exported symbol is the descriptor.
function(chatd_add_plugin name)
  cmake_parse_arguments(ARG "" "OUTPUT_DIR" "SOURCES" ${ARGN})
  add_library(${name} MODULE ${ARG_SOURCES})
  set_target_properties(${name} PROPERTIES PREFIX "" C_VISIBILITY_PRESET hidden)
  if(ARG_OUTPUT_DIR)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIR})
  else()
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${CHATD_PLUGIN_OUTPUT_DIR})
  endif()
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/api)
  target_link_libraries(${name} PRIVATE chatd_build_flags PkgConfig::JANSSON)
  if(NOT CHATD_SANITIZE)
    # Sanitizer runtimes live in the executable, so only plain builds can insist that a
    # plugin resolves every symbol at link time.
    target_link_options(${name} PRIVATE -Wl,--no-undefined)
  endif()
endfunction()

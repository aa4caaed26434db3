# chatd_add_plugin(): build a chatd plugin the way the host loads it. One definition for
# the bundled plugins (included by ChatdTargets.cmake) and for plugins built out of tree
# against an installed chatd (included by chatdConfig.cmake after find_package(chatd)).
#
# It needs the target chatd::plugin (the API header and jansson). In this tree it is an
# alias of chatd_plugin_api; in an installed chatd, the imported target of the package.
# Two optional variables tune it:
#   CHATD_PLUGIN_OUTPUT_DIR   where NAME.so lands when OUTPUT_DIR is not given
#   CHATD_PLUGIN_BUILD_FLAGS  more targets to link privately (this tree: warning flags)
# CHATD_SANITIZE (set to anything) drops -Wl,--no-undefined, whose check a sanitizer
# runtime that lives in the executable cannot pass.

# chatd_add_plugin(NAME SOURCES a.c b.c ... [OUTPUT_DIR dir])
# Builds NAME.so (no lib prefix) with hidden visibility, so its one exported symbol is
# the descriptor, and with every symbol resolved at link time.
function(chatd_add_plugin name)
  cmake_parse_arguments(ARG "" "OUTPUT_DIR" "SOURCES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "chatd_add_plugin(${name}): no SOURCES given")
  endif()
  add_library(${name} MODULE ${ARG_SOURCES})
  set_target_properties(${name} PROPERTIES PREFIX "" C_VISIBILITY_PRESET hidden)
  if(ARG_OUTPUT_DIR)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIR})
  elseif(CHATD_PLUGIN_OUTPUT_DIR)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${CHATD_PLUGIN_OUTPUT_DIR})
  endif()
  # jansson comes in through chatd::plugin, linked as the host links it: at run time
  # the plugin and chatd share the one libjansson the process has.
  target_link_libraries(${name} PRIVATE chatd::plugin ${CHATD_PLUGIN_BUILD_FLAGS})
  if(NOT CHATD_SANITIZE)
    # Sanitizer runtimes live in the executable, so only plain builds can insist that a
    # plugin resolves every symbol at link time.
    target_link_options(${name} PRIVATE -Wl,--no-undefined)
  endif()
endfunction()

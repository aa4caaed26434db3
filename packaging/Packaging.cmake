# Packaging.cmake - what an operator's system gets besides the binaries: the systemd
# unit and the man pages (with the server), and the CPack DEB generator that makes two
# packages from the install rules' components:
#   chatd      (component server)  chatd, chat, the bundled plugins, /etc/chatd/chatd.conf
#                                  (a conffile), the systemd unit, the man pages
#   chatd-dev  (component sdk)     the plugin and service headers, the test kit, the
#                                  pkg-config files and the CMake package
# packaging/build-debs configures a build for /usr and runs cpack; docs/operations.md,
# "Installing from packages", says what to do with the result.

# Debian 12 packages still ship their units in /lib/systemd/system (files moved under
# /usr only after bookworm); any other prefix keeps its own, which systemd also reads
# for /usr/local.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(chatd_default_unit_dir /lib/systemd/system)
else()
  set(chatd_default_unit_dir ${CMAKE_INSTALL_LIBDIR}/systemd/system)
endif()
set(CHATD_SYSTEMD_UNIT_DIR ${chatd_default_unit_dir} CACHE STRING
  "Where chatd.service is installed (relative: under the prefix)")

if(IS_ABSOLUTE ${CHATD_SYSTEMD_UNIT_DIR})
  set(CHATD_UNIT_FILE ${CHATD_SYSTEMD_UNIT_DIR}/chatd.service)
else()
  set(CHATD_UNIT_FILE ${CMAKE_INSTALL_PREFIX}/${CHATD_SYSTEMD_UNIT_DIR}/chatd.service)
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/chatd.service.in
  ${CMAKE_CURRENT_BINARY_DIR}/packaging/chatd.service @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/packaging/chatd.service
  DESTINATION ${CHATD_SYSTEMD_UNIT_DIR} COMPONENT server)

# The man pages, with this build's version and paths, gzipped as Debian ships them
# (-n: no name or time stamp inside, so a rebuild gives the same bytes).
set(man_pages chat.1 chatd.conf.5 chatd.8)
set(man_gz)
foreach(page ${man_pages})
  string(REGEX REPLACE ".*\\.([0-9])$" "\\1" section ${page})
  set(page_out ${CMAKE_CURRENT_BINARY_DIR}/man/${page})
  configure_file(${PROJECT_SOURCE_DIR}/docs/man/${page} ${page_out} @ONLY)
  add_custom_command(OUTPUT ${page_out}.gz COMMAND gzip -9nkf ${page_out}
    DEPENDS ${page_out} VERBATIM)
  install(FILES ${page_out}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section}
    COMPONENT server)
  list(APPEND man_gz ${page_out}.gz)
endforeach()
add_custom_target(man_pages ALL DEPENDS ${man_gz})

# The maintainer scripts and the conffile list of the chatd package.
configure_file(${CMAKE_CURRENT_LIST_DIR}/debian/conffiles.in
  ${CMAKE_CURRENT_BINARY_DIR}/packaging/conffiles @ONLY)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME chatd)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "chatd maintainers <chatd@localhost>")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL server sdk)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
# Depends from the libraries the binaries link (dpkg-shlibdeps), plus what is below.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_SERVER_PACKAGE_NAME chatd)
set(CPACK_DEBIAN_SERVER_PACKAGE_SECTION net)
# procps: /bin/kill, the unit's ExecReload.
set(CPACK_DEBIAN_SERVER_PACKAGE_DEPENDS "procps")
set(CPACK_DEBIAN_SERVER_PACKAGE_SUGGESTS "mariadb-server")
set(CPACK_COMPONENT_SERVER_DESCRIPTION "chat server whose commands are plugins
chatd speaks JSON lines over TCP and TLS, keeps its users, friends, groups and
messages in MariaDB, and reloads its config and plugins live. This package has
the server, its bundled plugins, the chat terminal client, a systemd unit that
runs chatd as the system user chatd, and the man pages.")
set(CPACK_DEBIAN_SERVER_PACKAGE_CONTROL_EXTRA
  ${CMAKE_CURRENT_BINARY_DIR}/packaging/conffiles ${CMAKE_CURRENT_LIST_DIR}/debian/postinst
  ${CMAKE_CURRENT_LIST_DIR}/debian/prerm ${CMAKE_CURRENT_LIST_DIR}/debian/postrm)

set(CPACK_DEBIAN_SDK_PACKAGE_NAME chatd-dev)
set(CPACK_DEBIAN_SDK_PACKAGE_SECTION libdevel)
# The plugin header includes jansson's; the CMake package and the pkg-config files find
# jansson and Check through pkg-config; the test kit's tests link Check.
set(CPACK_DEBIAN_SDK_PACKAGE_DEPENDS "libjansson-dev (>= 2.14), check (>= 0.15), pkg-config")
set(CPACK_DEBIAN_SDK_PACKAGE_RECOMMENDS "chatd (= ${PROJECT_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE})")
set(CPACK_COMPONENT_SDK_DESCRIPTION "SDK for chatd plugins
Headers of the chatd plugin API and of the accounts and groups services, the
test kit (chatd's loader and host in-process, with Check), pkg-config files
and the CMake package (find_package(chatd), chatd_add_plugin()).")

include(CPack)

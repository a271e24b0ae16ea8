# Packaging.cmake: what `cmake --install` puts where, and the Debian
# packages CPack makes of it, one per program:
#
#   baton-relay    the relay, its system service, its user, baton-relay(8)
#   baton-local    the laptop daemon, its user service, baton-local(1)
#   baton-sandbox  the sandbox daemon, baton-sandbox(1)
#   baton          the client, baton(1), bash and zsh completion
#
# scripts/package.sh builds them. Each install rule names its component
# (relay, local, sandbox, client); the component is the package.
include(GNUInstallDirs)

set(_dist ${CMAKE_SOURCE_DIR}/dist)

# Unit and sysusers folders are fixed by systemd, under the prefix: lib/,
# never the multiarch libdir. zsh looks in share/zsh/site-functions, but
# Debian's zsh in share/zsh/vendor-completions (scripts/package.sh says so).
set(BATON_SYSTEMD_DIR "lib/systemd" CACHE STRING
    "where systemd units go, under the prefix")
set(BATON_ZSH_COMPLETION_DIR "${CMAKE_INSTALL_DATADIR}/zsh/site-functions"
    CACHE STRING "where the zsh completion goes, under the prefix")

install(TARGETS baton-relay RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        COMPONENT relay)
install(TARGETS baton-local RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        COMPONENT local)
install(TARGETS baton-sandbox RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        COMPONENT sandbox)
install(TARGETS baton RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        COMPONENT client)

install(FILES ${_dist}/man/baton-relay.8
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man8 COMPONENT relay)
install(FILES ${_dist}/man/baton-local.1
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT local)
install(FILES ${_dist}/man/baton-sandbox.1
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT sandbox)
install(FILES ${_dist}/man/baton.1
        DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT client)

install(FILES ${_dist}/completion/baton.bash
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        RENAME baton COMPONENT client)
install(FILES ${_dist}/completion/_baton
        DESTINATION ${BATON_ZSH_COMPLETION_DIR} COMPONENT client)

# The units name the programs by absolute path, so they are written when
# installing, with the prefix of that install (cmake --install --prefix,
# or CPack's /usr), not the one the build was configured with; each prefix
# in a folder of its own, as installs may run side by side.
function(baton_install_unit component template kind)
  get_filename_component(_name ${template} NAME_WLE)
  set(_dest "${BATON_SYSTEMD_DIR}/${kind}")
  if(IS_ABSOLUTE "${CMAKE_INSTALL_BINDIR}")
    set(_bindir "${CMAKE_INSTALL_BINDIR}")
  else()
    set(_bindir "\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}")
  endif()
  if(NOT IS_ABSOLUTE "${_dest}")
    set(_dest "\${CMAKE_INSTALL_PREFIX}/${_dest}")
  endif()
  install(CODE "
    set(BATON_BINDIR \"${_bindir}\")
    string(MD5 _prefix_id \"\${CMAKE_INSTALL_PREFIX}\")
    set(_unit \"${CMAKE_BINARY_DIR}/dist/\${_prefix_id}/${_name}\")
    configure_file(\"${template}\" \"\${_unit}\" @ONLY)
    file(INSTALL DESTINATION \"${_dest}\" TYPE FILE FILES \"\${_unit}\")"
    COMPONENT ${component})
endfunction()
baton_install_unit(relay ${_dist}/systemd/baton-relay.service.in system)
baton_install_unit(local ${_dist}/systemd/baton-local.service.in user)
install(FILES ${_dist}/sysusers/baton-relay.conf
        DESTINATION lib/sysusers.d COMPONENT relay)

# The Debian packages.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME baton)
set(CPACK_PACKAGE_VENDOR "Baton")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_INSTALL_DIRECTORY baton)
set(CPACK_STRIP_FILES TRUE)
set(CPACK_COMPONENTS_ALL relay local sandbox client)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "Baton maintainers <baton@example.invalid>"
    CACHE STRING "the Maintainer field of the Debian packages")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
# Each package's description: its first line is the summary.

# Depends: the Debian 12 packages of the libraries each program links
# (test-install.sh checks them against the programs' DT_NEEDED), and
# libwebsockets-evlib-uv, which libwebsockets loads at run time for the
# libuv event loop, so no linker sees it.
set(_base "libc6, libuv1, libwebsockets17, libwebsockets-evlib-uv, \
libcjson1, libgit2-1.5, libsodium23, libssl3")

set(CPACK_DEBIAN_RELAY_PACKAGE_NAME baton-relay)
set(CPACK_DEBIAN_RELAY_PACKAGE_DEPENDS "${_base}, libsqlite3-0, zlib1g")
# The process launcher runs baton-sandbox from beside baton-relay; with
# --sandbox-launcher command: (containers) it is not needed.
set(CPACK_DEBIAN_RELAY_PACKAGE_RECOMMENDS "baton-sandbox")
set(CPACK_DEBIAN_RELAY_PACKAGE_CONTROL_EXTRA
    ${_dist}/debian/relay/postinst)
set(CPACK_DEBIAN_RELAY_DESCRIPTION
"Baton relay server
The server of Baton: laptops and sandboxes register with it, clients
steer coding-agent sessions through it, and it moves sessions between
machines. Ships a hardened systemd service running as its own user.")

set(CPACK_DEBIAN_LOCAL_PACKAGE_NAME baton-local)
set(CPACK_DEBIAN_LOCAL_PACKAGE_DEPENDS "${_base}, libqrencode4, zlib1g")
set(CPACK_DEBIAN_LOCAL_PACKAGE_RECOMMENDS "git, ca-certificates")
set(CPACK_DEBIAN_LOCAL_DESCRIPTION
"Baton laptop daemon
Registers the laptop with a Baton relay and runs coding-agent sessions
(Claude Code, Codex, a shell) in its git worktrees, so they can be
steered from a phone or another terminal and moved to a cloud sandbox
and back. Runs as a systemd user service.")

set(CPACK_DEBIAN_SANDBOX_PACKAGE_NAME baton-sandbox)
set(CPACK_DEBIAN_SANDBOX_PACKAGE_DEPENDS "${_base}, zlib1g")
set(CPACK_DEBIAN_SANDBOX_PACKAGE_RECOMMENDS "git, ca-certificates")
set(CPACK_DEBIAN_SANDBOX_DESCRIPTION
"Baton sandbox daemon
Runs moved coding-agent sessions in a cloud sandbox; started by the
Baton relay's launcher or by a container at boot.")

set(CPACK_DEBIAN_CLIENT_PACKAGE_NAME baton)
set(CPACK_DEBIAN_CLIENT_PACKAGE_DEPENDS "${_base}, libqrencode4")
set(CPACK_DEBIAN_CLIENT_PACKAGE_RECOMMENDS "ca-certificates")
set(CPACK_DEBIAN_CLIENT_DESCRIPTION
"Baton client
Lists, starts, attaches to, types into and moves coding-agent sessions
through a Baton relay, from any terminal.")

include(CPack)

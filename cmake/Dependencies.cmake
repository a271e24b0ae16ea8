# Finds Baton's dependencies through pkg-config and stops with a message that
# says what to install when one is missing or lacks a feature we need.
find_package(PkgConfig)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR
    "pkg-config not found. Install it: apt-get install pkg-config "
    "(or run scripts/deps.sh, which installs everything Baton needs)")
endif()

# name in pkg-config, Debian package, imported target name
set(_baton_deps
  "libuv|libuv1-dev|uv"
  "libwebsockets|libwebsockets-dev|lws"
  "libcjson|libcjson-dev|cjson"
  "libgit2|libgit2-dev|git2"
  "libsodium|libsodium-dev|sodium"
  "sqlite3|libsqlite3-dev|sqlite3"
  "libcrypto|libssl-dev|crypto"
  "libqrencode|libqrencode-dev|qrencode"
  "zlib|zlib1g-dev|zlib")
if(BATON_TESTS)
  list(APPEND _baton_deps "cmocka|libcmocka-dev|cmocka")
endif()

foreach(_dep IN LISTS _baton_deps)
  string(REPLACE "|" ";" _f "${_dep}")
  list(GET _f 0 _pc)
  list(GET _f 1 _deb)
  list(GET _f 2 _name)
  pkg_check_modules(DEP_${_name} QUIET IMPORTED_TARGET ${_pc})
  if(NOT DEP_${_name}_FOUND)
    message(FATAL_ERROR
      "${_pc} not found. Install it: apt-get install ${_deb} "
      "(or run scripts/deps.sh, which installs everything Baton needs)")
  endif()
  add_library(dep::${_name} ALIAS PkgConfig::DEP_${_name})
endforeach()

# libwebsockets must have been built with libuv support, and the runtime
# plugin (libwebsockets-evlib-uv) must be installed, or the relay and the
# daemons cannot run their sockets on our event loop.
include(CheckSymbolExists)
set(CMAKE_REQUIRED_INCLUDES ${DEP_lws_INCLUDE_DIRS})
check_symbol_exists(LWS_WITH_LIBUV "lws_config.h" BATON_LWS_HAS_LIBUV)
unset(CMAKE_REQUIRED_INCLUDES)
if(NOT BATON_LWS_HAS_LIBUV)
  message(FATAL_ERROR
    "libwebsockets was built without libuv support (LWS_WITH_LIBUV). "
    "Use Debian's libwebsockets-dev 4.1 or rebuild it with -DLWS_WITH_LIBUV=ON")
endif()
find_library(BATON_LWS_EVLIB_UV NAMES websockets-evlib_uv
             HINTS ${DEP_lws_LIBRARY_DIRS})
if(NOT BATON_LWS_EVLIB_UV)
  message(FATAL_ERROR
    "The libwebsockets libuv plugin (libwebsockets-evlib_uv.so) is missing. "
    "Install it: apt-get install libwebsockets-evlib-uv")
endif()

# TLS: lws must speak it, with OpenSSL, whose libcrypto common/tls.c uses to
# check certificate files and to name why a certificate was refused.
set(CMAKE_REQUIRED_INCLUDES ${DEP_lws_INCLUDE_DIRS})
check_symbol_exists(LWS_WITH_TLS "lws_config.h" BATON_LWS_HAS_TLS)
check_symbol_exists(LWS_WITH_MBEDTLS "lws_config.h" BATON_LWS_HAS_MBEDTLS)
unset(CMAKE_REQUIRED_INCLUDES)
if(NOT BATON_LWS_HAS_TLS OR BATON_LWS_HAS_MBEDTLS)
  message(FATAL_ERROR
    "libwebsockets was built without TLS or with mbedTLS; Baton needs its "
    "OpenSSL flavour for wss://. Use Debian's libwebsockets-dev 4.1 or "
    "rebuild it with -DLWS_WITH_SSL=ON and OpenSSL")
endif()

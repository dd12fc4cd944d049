# strata as a MicroPython user C module, for the CMake-based ports. The
# same module as micropython.mk builds: modstrata.c and strata's sources
# from the tree three levels up; <strata/x.h> comes from a folder of links
# made in the build folder, never in the source tree.
#
# WebSocket needs wolfSSL's wolfCrypt (SHA-1, base64) and zlib, TLS needs
# wolfSSL. With pkg-config finding both (a host build) they are on;
# otherwise set STRATA_MP_WS / STRATA_MP_TLS ON and STRATA_MP_WOLFSSL_TARGET
# to a CMake target that brings the port's own wolfSSL and zlib builds.
# The socket layer needs POSIX sockets and poll() (the unix port; esp32's
# lwIP sockets): a port without them cannot take this module.

get_filename_component(STRATA_ROOT ${CMAKE_CURRENT_LIST_DIR}/../../.. ABSOLUTE)
set(STRATA_MP_INC ${CMAKE_BINARY_DIR}/strata_include)

set(STRATA_MP_WOLFSSL_TARGET "" CACHE STRING
    "target providing wolfSSL and zlib (empty: pkg-config)")
if(NOT STRATA_MP_WOLFSSL_TARGET)
  find_package(PkgConfig QUIET)
  if(PKG_CONFIG_FOUND)
    pkg_check_modules(STRATA_MP_DEPS QUIET IMPORTED_TARGET wolfssl zlib)
  endif()
  if(STRATA_MP_DEPS_FOUND)
    set(STRATA_MP_WOLFSSL_TARGET PkgConfig::STRATA_MP_DEPS)
  endif()
endif()
if(STRATA_MP_WOLFSSL_TARGET)
  set(_strata_mp_deps ON)
else()
  set(_strata_mp_deps OFF)
endif()
option(STRATA_MP_WS "strata module: WebSocket layer" ${_strata_mp_deps})
option(STRATA_MP_TLS "strata module: TLS layer" ${_strata_mp_deps})

file(MAKE_DIRECTORY ${STRATA_MP_INC}/strata)
file(GLOB _strata_mp_headers ${STRATA_ROOT}/streams/*.h ${STRATA_ROOT}/protos/*.h)
foreach(h ${_strata_mp_headers})
  get_filename_component(n ${h} NAME)
  file(CREATE_LINK ${h} ${STRATA_MP_INC}/strata/${n} SYMBOLIC COPY_ON_ERROR)
endforeach()

add_library(usermod_strata INTERFACE)
target_sources(usermod_strata INTERFACE
  ${CMAKE_CURRENT_LIST_DIR}/modstrata.c
  ${STRATA_ROOT}/streams/stream.c
  ${STRATA_ROOT}/streams/buffered.c
  ${STRATA_ROOT}/streams/wbuf.c
  ${STRATA_ROOT}/streams/socket.c
  ${STRATA_ROOT}/protos/line.c
  ${STRATA_ROOT}/protos/lenprefix.c)
target_include_directories(usermod_strata INTERFACE ${STRATA_MP_INC})

if(STRATA_MP_WS)
  target_sources(usermod_strata INTERFACE
    ${STRATA_ROOT}/protos/http1.c
    ${STRATA_ROOT}/protos/ws.c
    ${STRATA_ROOT}/protos/ws_handshake.c
    ${STRATA_ROOT}/protos/ws_deflate.c
    ${STRATA_ROOT}/protos/utf8.c)
  target_compile_definitions(usermod_strata INTERFACE STRATA_WITH_WS=1)
endif()
if(STRATA_MP_TLS)
  target_sources(usermod_strata INTERFACE
    ${STRATA_ROOT}/protos/tls.c
    ${STRATA_ROOT}/protos/tls_config.c)
  target_compile_definitions(usermod_strata INTERFACE STRATA_WITH_TLS=1)
endif()
if(STRATA_MP_WS OR STRATA_MP_TLS)
  if(NOT STRATA_MP_WOLFSSL_TARGET)
    message(FATAL_ERROR "strata module: ws and tls need wolfSSL and zlib "
                        "(set STRATA_MP_WOLFSSL_TARGET)")
  endif()
  target_link_libraries(usermod_strata INTERFACE ${STRATA_MP_WOLFSSL_TARGET})
endif()

target_link_libraries(usermod INTERFACE usermod_strata)

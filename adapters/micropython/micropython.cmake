# strata's MicroPython user C modules, for the CMake-based ports (esp32,
# rp2...): USER_C_MODULES=<strata>/adapters/micropython/micropython.cmake
# (make-based ports take the folder itself: see strata/micropython.mk).
include(${CMAKE_CURRENT_LIST_DIR}/strata/micropython.cmake)

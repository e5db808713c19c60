# Run a program and compare its stdout byte for byte with an expected file.
#
#   cmake -DPROGRAM=<exe> -DEXPECTED=<file> [-DACTUAL=<file>] -P check_output.cmake
#
# Fails when the program exits non-zero (a sanitizer report, say) or when the
# output differs; then it shows a unified diff and the program's stderr.
# ACTUAL keeps the output seen.
cmake_minimum_required(VERSION 3.20)

foreach(var IN ITEMS PROGRAM EXPECTED)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_output.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT DEFINED ACTUAL)
  get_filename_component(name "${PROGRAM}" NAME)
  set(ACTUAL "${CMAKE_CURRENT_BINARY_DIR}/${name}.out")
endif()

execute_process(COMMAND "${PROGRAM}"
  INPUT_FILE /dev/null
  OUTPUT_VARIABLE actual
  ERROR_VARIABLE errors
  RESULT_VARIABLE rc)
file(WRITE "${ACTUAL}" "${actual}")

if(NOT rc STREQUAL "0")
  message("--- stdout ---\n${actual}--- stderr ---\n${errors}")
  message(FATAL_ERROR "${PROGRAM} exited with ${rc}")
endif()

file(READ "${EXPECTED}" expected)
if(actual STREQUAL expected)
  message(STATUS "output matches ${EXPECTED}")
  return()
endif()

# diff(1) is in Debian's essential set (diffutils).
execute_process(COMMAND diff -u "${EXPECTED}" "${ACTUAL}" OUTPUT_VARIABLE shown)
message("${shown}--- stderr ---\n${errors}")
message(FATAL_ERROR "output of ${PROGRAM} differs from ${EXPECTED} (see the diff above)")

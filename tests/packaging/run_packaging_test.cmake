# Packaging test: install the library into a fresh prefix, then build and run real
# consumers of it: find_package(asyncio CONFIG), pkg-config, and add_subdirectory.
#
#   cmake -DSOURCE_DIR=<repo> -DWORK_DIR=<scratch dir> -DCXX_COMPILER=<c++>
#         [-DGENERATOR=<gen>] [-DMAKE_PROGRAM=<prog>] [-DBUILD_TYPE=<type>]
#         [-DWERROR=ON] -P run_packaging_test.cmake
#
# WORK_DIR is removed and rebuilt on every run.
cmake_minimum_required(VERSION 3.20)

foreach(var IN ITEMS SOURCE_DIR WORK_DIR CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_packaging_test.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT BUILD_TYPE)
  set(BUILD_TYPE Release)
endif()
if(NOT DEFINED WERROR)
  set(WERROR OFF)
endif()

set(consumers "${CMAKE_CURRENT_LIST_DIR}")
set(prefix "${WORK_DIR}/prefix")
set(jobs 2)

# Options every configure step shares: same compiler, generator and build type.
set(common -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=${BUILD_TYPE})
if(GENERATOR)
  list(APPEND common -G ${GENERATOR})
  if(MAKE_PROGRAM)
    list(APPEND common -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
  endif()
endif()

# step(<what> <command>...): run a command, stop the test if it fails.
function(step what)
  message(STATUS "packaging: ${what}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc STREQUAL "0")
    message(FATAL_ERROR "packaging: ${what} failed (${rc}):\n  ${ARGN}")
  endif()
endfunction()

# run_consumer(<what> <exe>): the consumer must exit 0 and say it is ok.
function(run_consumer what exe)
  execute_process(COMMAND "${exe}" OUTPUT_VARIABLE out RESULT_VARIABLE rc)
  if(NOT rc STREQUAL "0" OR NOT out STREQUAL "consumer: ok\n")
    message(FATAL_ERROR "packaging: ${what} consumer failed (${rc}): ${out}")
  endif()
  message(STATUS "packaging: ${what} consumer: ok")
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

# 1. Build and install the library alone (no tests, no examples).
step("configure library" ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/library ${common}
  -DCMAKE_INSTALL_PREFIX=${WORK_DIR}/configured-prefix -DBUILD_TESTING=OFF -DASYNCIO_BUILD_EXAMPLES=OFF
  -DASYNCIO_BUILD_BENCH=OFF -DASYNCIO_WERROR=${WERROR})
step("build library" ${CMAKE_COMMAND} --build ${WORK_DIR}/library -j ${jobs})
# Installed elsewhere than configured (cmake --install --prefix): the
# package files must not depend on the configured prefix.
step("install library" ${CMAKE_COMMAND} --install ${WORK_DIR}/library --prefix ${prefix})
if(EXISTS "${WORK_DIR}/configured-prefix")
  message(FATAL_ERROR "packaging: install wrote to the configured prefix")
endif()

# 2. find_package(asyncio CONFIG REQUIRED) against the prefix.
step("configure find_package consumer" ${CMAKE_COMMAND} -S ${consumers}/find_package
  -B ${WORK_DIR}/find_package ${common} -DCMAKE_PREFIX_PATH=${prefix}
  -DCONSUMER_WERROR=${WERROR})
file(STRINGS "${WORK_DIR}/find_package/CMakeCache.txt" found REGEX "^asyncio_DIR:")
string(FIND "${found}" "${prefix}/" at)
if(NOT at GREATER -1)
  message(FATAL_ERROR "packaging: find_package found asyncio outside ${prefix}: ${found}")
endif()
step("build find_package consumer" ${CMAKE_COMMAND} --build ${WORK_DIR}/find_package)
run_consumer(find_package "${WORK_DIR}/find_package/consumer")

# 3. pkg-config --cflags --libs asyncio, then a bare compiler command line.
find_program(PKG_CONFIG pkg-config REQUIRED)
file(GLOB_RECURSE pc_files "${prefix}/*/asyncio.pc")
if(NOT pc_files)
  message(FATAL_ERROR "packaging: no asyncio.pc installed under ${prefix}")
endif()
list(GET pc_files 0 pc_file)
get_filename_component(pc_dir "${pc_file}" DIRECTORY)
execute_process(
  COMMAND ${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${pc_dir}
    ${PKG_CONFIG} --cflags --libs asyncio
  OUTPUT_VARIABLE pc_flags RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc STREQUAL "0")
  message(FATAL_ERROR "packaging: pkg-config --cflags --libs asyncio failed (${rc})")
endif()
message(STATUS "packaging: pkg-config gives: ${pc_flags}")
separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
set(werror_flag)
if(WERROR)
  set(werror_flag -Werror)
endif()
step("compile with pkg-config flags" ${CXX_COMPILER} -Wall -Wextra ${werror_flag}
  ${consumers}/main.cpp ${pc_flags} -o ${WORK_DIR}/pkg_config_consumer)
run_consumer(pkg-config "${WORK_DIR}/pkg_config_consumer")

# 4. add_subdirectory() of the source tree.
step("configure add_subdirectory consumer" ${CMAKE_COMMAND} -S ${consumers}/add_subdirectory
  -B ${WORK_DIR}/add_subdirectory ${common} -DASYNCIO_SOURCE_DIR=${SOURCE_DIR}
  -DCONSUMER_WERROR=${WERROR})
step("build add_subdirectory consumer" ${CMAKE_COMMAND} --build ${WORK_DIR}/add_subdirectory
  -j ${jobs})
run_consumer(add_subdirectory "${WORK_DIR}/add_subdirectory/consumer")

message(STATUS "packaging: all consumers ok")

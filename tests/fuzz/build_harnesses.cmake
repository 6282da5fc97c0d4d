# Configures and builds the harness project (tests/fuzz/clang) with clang; run by the CTest
# fixture fuzz_build_harnesses as
#   cmake -DCLANG=clang-15 -DSOURCE=tests/fuzz/clang -DBINARY=BUILD/fuzz-clang -P build_harnesses.cmake
# Incremental after the first run: only changed core or harness sources are recompiled.
foreach(var CLANG SOURCE BINARY)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "build_harnesses.cmake: -D${var}=... is required")
  endif()
endforeach()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE} -B ${BINARY} -DCMAKE_C_COMPILER=${CLANG}
                        -DCMAKE_BUILD_TYPE=RelWithDebInfo
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configuring the fuzz harnesses failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BINARY} -j2 RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building the fuzz harnesses failed")
endif()

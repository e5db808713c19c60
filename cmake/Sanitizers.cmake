# asyncio_apply_sanitizers(<target>): compile and link <target> with the
# sanitizers named in ASYNCIO_SANITIZE ("address,undefined" or "thread").
function(asyncio_apply_sanitizers target)
  if(ASYNCIO_SANITIZE)
    target_compile_options(${target} PUBLIC -fsanitize=${ASYNCIO_SANITIZE}
      -fno-omit-frame-pointer -fno-sanitize-recover=all)
    # clang 14's -fsanitize=function (part of "undefined") cannot compile a
    # coroutine template defined in a header ("Cannot represent a difference
    # across sections"), e.g. create_task(sleep(0)). Every other UBSan check stays on.
    if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang" AND ASYNCIO_SANITIZE MATCHES "undefined")
      target_compile_options(${target} PUBLIC -fno-sanitize=function)
    endif()
    target_link_options(${target} PUBLIC -fsanitize=${ASYNCIO_SANITIZE})
  endif()
endfunction()

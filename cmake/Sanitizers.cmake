# asyncio_apply_sanitizers(<target>): compile and link <target> with the
# sanitizers named in ASYNCIO_SANITIZE ("address,undefined" or "thread").
function(asyncio_apply_sanitizers target)
  if(ASYNCIO_SANITIZE)
    target_compile_options(${target} PUBLIC -fsanitize=${ASYNCIO_SANITIZE}
      -fno-omit-frame-pointer -fno-sanitize-recover=all)
    target_link_options(${target} PUBLIC -fsanitize=${ASYNCIO_SANITIZE})
  endif()
endfunction()

# convgen_add_kernel_library(<target> KERNELS <op>:<format>[...] [TARGETS <halide targets>])
#
# Compiles one Halide library per kernel with the convgen generators and bundles them into the static
# library <target>, together with the generated kernel list that the runtime dispatches from
# (function <target>() in <target>.h). The kernel list is the only list of built kernels: the
# dispatcher, the tests and the benchmarks all read it.
function(convgen_add_kernel_library TARGET)
  cmake_parse_arguments(ARG "" "" "KERNELS;TARGETS" ${ARGN})
  if (NOT ARG_TARGETS)
    set(ARG_TARGETS host)
  endif ()
  string(JOIN "," targets_text ${ARG_TARGETS})

  set(includes "")
  set(entries "")
  set(halide_runtime "")
  foreach (kernel IN LISTS ARG_KERNELS)
    string(REPLACE ":" ";" parts "${kernel}")
    list(GET parts 0 op)
    list(GET parts 1 format)
    string(TOLOWER "${format}" format_lower)
    set(name "convgen_${op}_generic_${format_lower}")

    if (halide_runtime)
      set(runtime_arg USE_RUNTIME ${halide_runtime})
    else ()
      set(runtime_arg "")
    endif ()
    add_halide_library(${name} FROM convgen_generators
                       GENERATOR ${op}
                       TARGETS ${ARG_TARGETS}
                       PARAMS data_format=${format}
                       ${runtime_arg}
                       STMT stmt_file)
    if (NOT halide_runtime)
      set(halide_runtime ${name}.runtime)
    endif ()
    list(APPEND libraries ${name})
    string(APPEND includes "#include \"${name}.h\"\n")
    string(APPEND entries
           "      {\"${name}\", convgen::Op::${op}, convgen::DataFormat::${format}, \"\", "
           "\"${targets_text}\", &convgen::call_${op}<${name}>},\n")
  endforeach ()

  set(CONVGEN_TABLE_FUNCTION ${TARGET})
  set(CONVGEN_TABLE_INCLUDES "${includes}")
  set(CONVGEN_TABLE_ENTRIES "${entries}")
  configure_file(${CONVGEN_CMAKE_DIR}/kernel_table.h.in ${CMAKE_CURRENT_BINARY_DIR}/${TARGET}.h @ONLY)
  configure_file(${CONVGEN_CMAKE_DIR}/kernel_table.cpp.in ${CMAKE_CURRENT_BINARY_DIR}/${TARGET}.cpp @ONLY)

  add_library(${TARGET} STATIC ${CMAKE_CURRENT_BINARY_DIR}/${TARGET}.cpp)
  target_include_directories(${TARGET} PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_BINARY_DIR}>)
  target_link_libraries(${TARGET} PUBLIC convgen::runtime PRIVATE ${libraries})
endfunction()

# convgen_add_kernels(<name>
#                     [CONFIG <shapes.json>]          layers whose shapes are baked into kernels
#                     [TARGETS <halide target>...]    default x86-64 (AVX-512, AVX2+FMA, SSE4.1)
#                     [GENERIC <NHWC|NCHW|none>...]   default: the layouts the config uses
#                     [SCHEDULES <schedules.json>]    tuned schedules (convgen tune)
#                     [JOBS <n>]                      generator processes at once, default 2
#                     [EMIT <stmt|assembly>...])      also write each kernel's review files
#
# Generates, at build time, the kernels of a shape config with `convgen generate` and makes the
# static library <name> of them: link it and call `<name>()` (header <name>.h) for its kernel list,
# which a convgen::Engine dispatches from. Only kernels whose layer changed are regenerated. The
# library's target property CONVGEN_KERNEL_DIR is the folder of the generated files.
#
# With CONVGEN_KERNELS_FROM set to another build of the same project for the same machine, the
# kernels that build generated are linked instead (the folder of the same relative path): kernels
# are Halide's code, the same in a build of any type, so a sanitizer build reuses a release build's.
function(convgen_add_kernels NAME)
  cmake_parse_arguments(ARG "" "CONFIG;SCHEDULES;JOBS" "TARGETS;GENERIC;EMIT" ${ARGN})
  set(dir "${CMAKE_CURRENT_BINARY_DIR}/${NAME}")
  if (CONVGEN_KERNELS_FROM)
    file(RELATIVE_PATH path "${PROJECT_BINARY_DIR}" "${dir}")
    set(dir "${CONVGEN_KERNELS_FROM}/${path}")
    if (NOT EXISTS "${dir}/lib${NAME}.a")
      message(FATAL_ERROR "CONVGEN_KERNELS_FROM: no ${dir}/lib${NAME}.a; build "
                          "${CONVGEN_KERNELS_FROM} first")
    endif ()
    _convgen_kernel_library(${NAME} "${dir}")
    return()
  endif ()
  set(args --library ${NAME} --out "${dir}" --generator $<TARGET_FILE:convgen::generators>)
  set(depends $<TARGET_FILE:convgen::generate> $<TARGET_FILE:convgen::generators>)
  if (ARG_CONFIG)
    get_filename_component(config "${ARG_CONFIG}" ABSOLUTE)
    list(APPEND args --config "${config}")
    list(APPEND depends "${config}")
  endif ()
  if (ARG_SCHEDULES)
    get_filename_component(schedules "${ARG_SCHEDULES}" ABSOLUTE)
    list(APPEND args --schedules "${schedules}")
    list(APPEND depends "${schedules}")
  endif ()
  if (ARG_TARGETS)
    list(JOIN ARG_TARGETS "," targets)
    list(APPEND args --targets "${targets}")
  endif ()
  if (ARG_GENERIC)
    list(JOIN ARG_GENERIC "," generic)
    list(APPEND args --generic "${generic}")
  endif ()
  if (ARG_EMIT)
    list(JOIN ARG_EMIT "," emit)
    list(APPEND args --emit "${emit}")
  endif ()
  if (NOT ARG_JOBS)
    set(ARG_JOBS 2)
  endif ()

  set(archive "${dir}/lib${NAME}.a")
  add_custom_command(OUTPUT "${archive}" "${dir}/${NAME}.h" "${dir}/${NAME}.cpp"
                     COMMAND $<TARGET_FILE:convgen::generate> ${args} --jobs ${ARG_JOBS}
                     DEPENDS ${depends}
                     COMMENT "convgen: generating the kernels of ${NAME}"
                     VERBATIM)
  _convgen_kernel_library(${NAME} "${dir}")
  # Inside convgen's own build the generator programs are targets that must be built first.
  foreach (tool convgen::generate convgen::generators)
    get_target_property(real ${tool} ALIASED_TARGET)
    if (real)
      add_dependencies(${NAME} ${real})
    endif ()
  endforeach ()
endfunction()

# The library <name> of the kernels generated into `dir`: their archive and kernel list.
function(_convgen_kernel_library NAME dir)
  set(archive "${dir}/lib${NAME}.a")
  add_library(${NAME} STATIC "${dir}/${NAME}.cpp")
  target_include_directories(${NAME} PUBLIC "$<BUILD_INTERFACE:${dir}>")
  target_link_libraries(${NAME} PUBLIC convgen::runtime "${archive}" Threads::Threads ${CMAKE_DL_LIBS})
  set_target_properties(${NAME} PROPERTIES LINK_DEPENDS "${archive}" CONVGEN_KERNEL_DIR "${dir}")
endfunction()

# Installs convgen from this build into a scratch prefix, then configures, builds and runs the
# edge-detection example against it as an out-of-tree project, the way a user's application would.
#   cmake -DBUILD_DIR=... -DEXAMPLE_DIR=... -DWORK_DIR=... -P run_example.cmake
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status)
  if (NOT status EQUAL 0)
    message(FATAL_ERROR "failed (${status}): ${ARGN}")
  endif ()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${WORK_DIR}/install")
run(${CMAKE_COMMAND} -S "${EXAMPLE_DIR}" -B "${WORK_DIR}/build"
    -DCMAKE_PREFIX_PATH=${WORK_DIR}/install -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build "${WORK_DIR}/build" -j 2)
file(MAKE_DIRECTORY "${WORK_DIR}/out")
execute_process(COMMAND "${WORK_DIR}/build/edge_detection" "${WORK_DIR}/out/edges"
                RESULT_VARIABLE status OUTPUT_VARIABLE output)
message("${output}")
if (NOT status EQUAL 0)
  message(FATAL_ERROR "edge_detection failed (${status})")
endif ()
# Both layers of edge_layers.json must have run on their specialized kernels.
foreach (kernel convgen_conv2d__n1h256w256c1_k2r3s3_sh1sw1dh1dw1_pt1pb1pl1pr1_nhwc
                convgen_conv2d__n1h256w256c1_k2r3s3_sh2sw2dh1dw1_pt0pb1pl0pr1_nhwc)
  if (NOT output MATCHES "-> ${kernel}\n")
    message(FATAL_ERROR "the specialized kernel ${kernel} did not run")
  endif ()
endforeach ()
foreach (image edges.pgm edges_s2.pgm edges_input.pgm)
  if (NOT EXISTS "${WORK_DIR}/out/${image}")
    message(FATAL_ERROR "no ${image} written")
  endif ()
endforeach ()

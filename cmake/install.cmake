# `cmake --install`: the runtime and its headers, the programs, and the CMake package that lets an
# application write find_package(convgen) and convgen_add_kernels().
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(convgen_package_dir "${CMAKE_INSTALL_LIBDIR}/cmake/convgen")
set_target_properties(convgen_runtime PROPERTIES EXPORT_NAME runtime)
install(TARGETS convgen_runtime EXPORT convgenTargets
        ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
        INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(DIRECTORY runtime/include/convgen DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
# The generators sit beside convgen-generate, where it looks for them.
install(TARGETS convgen-generate convgen_generators EXPORT convgenTargets
        RUNTIME DESTINATION "${CMAKE_INSTALL_LIBEXECDIR}/convgen")
install(TARGETS convgen RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
install(EXPORT convgenTargets NAMESPACE convgen:: DESTINATION "${convgen_package_dir}")

configure_package_config_file(cmake/convgenConfig.cmake.in
                              "${PROJECT_BINARY_DIR}/convgenConfig.cmake"
                              INSTALL_DESTINATION "${convgen_package_dir}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/convgenConfigVersion.cmake"
                                 COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/convgenConfig.cmake"
              "${PROJECT_BINARY_DIR}/convgenConfigVersion.cmake"
              cmake/ConvgenKernels.cmake
        DESTINATION "${convgen_package_dir}")

# wf_add_workflows(DIR [OUTPUT_DIR out] [TARGET_PREFIX p])
# Builds every DIR/NAME.c as a loadable workflow module NAME.so whose workflow is named NAME (from
# the file's name, as the original API names a workflow from its file path). Load them with
# `wf-worker --workflows OUTPUT_DIR`. Defines the target `${TARGET_PREFIX}workflows` that builds all.
# Works in wf's own tree (target wf-worker), from the installed CMake package (wf::worker, after
# find_package(wf)), and, failing both, with pkg-config's wf-worker.pc.
function(wf_add_workflows dir)
  cmake_parse_arguments(ARG "" "OUTPUT_DIR;TARGET_PREFIX" "" ${ARGN})
  if(NOT ARG_OUTPUT_DIR)
    set(ARG_OUTPUT_DIR ${CMAKE_CURRENT_BINARY_DIR}/workflows)
  endif()
  get_filename_component(dir "${dir}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  file(GLOB files CONFIGURE_DEPENDS ${dir}/*.c)
  set(all "")
  foreach(f ${files})
    get_filename_component(name ${f} NAME_WE)
    string(MAKE_C_IDENTIFIER "${ARG_TARGET_PREFIX}wf_workflow_${name}" tgt)
    add_library(${tgt} MODULE ${f})
    set_target_properties(${tgt} PROPERTIES PREFIX "" OUTPUT_NAME ${name}
      LIBRARY_OUTPUT_DIRECTORY ${ARG_OUTPUT_DIR})
    target_compile_definitions(${tgt} PRIVATE WF_WORKFLOW_NAME="${name}")
    if(TARGET wf-worker)
      target_link_libraries(${tgt} PRIVATE wf-worker)
    elseif(TARGET wf::worker)
      target_link_libraries(${tgt} PRIVATE wf::worker)
    else()
      find_package(PkgConfig REQUIRED)
      pkg_check_modules(WF_WORKER REQUIRED IMPORTED_TARGET wf-worker)
      target_link_libraries(${tgt} PRIVATE PkgConfig::WF_WORKER)
    endif()
    list(APPEND all ${tgt})
  endforeach()
  add_custom_target(${ARG_TARGET_PREFIX}workflows ALL DEPENDS ${all})
endfunction()

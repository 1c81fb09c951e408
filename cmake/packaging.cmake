# packaging.cmake - Debian packages with CPack, one per install component:
#
#   libwf0      lib      libwf.so.0 and libwf-worker.so.0
#   libwf-dev   dev      headers, libwf.a, the .so links, wf.pc, wf-worker.pc, the CMake package
#   wf-worker   worker   /usr/bin/wf-worker, wf-worker@.service, wf-worker(1), example.env
#   wf-tools    tools    /usr/bin/wf (with the dashboard), wf(1), bash and zsh completion
#
#   cmake -S . -B build-deb -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_INSTALL_RPATH= ...
#   cmake --build build-deb && (cd build-deb && cpack -G DEB)
#
# scripts/package-test does this, installs the packages and runs a workflow with them. Depends of
# the shared objects come from dpkg-shlibdeps (dpkg-dev); the packages' own dependencies on each
# other are exact versions. libwf-dev adds the -dev packages of what wf.pc and wfConfig.cmake find.
set(CPACK_PACKAGE_NAME wf)
set(CPACK_PACKAGE_VENDOR "the wf authors")
set(CPACK_PACKAGE_CONTACT "the wf authors <wf@invalid>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "durable workflow runs for C services, on Redis")
set(CPACK_RESOURCE_FILE_LICENSE ${CMAKE_SOURCE_DIR}/LICENSE)
set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL lib dev worker tools)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://example.invalid/wf")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# dpkg-shlibdeps finds libwf.so.0 of the worker and the CLI in the lib component's staging tree.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS
  ${CMAKE_BINARY_DIR}/_CPack_Packages/Linux/DEB/wf-${PROJECT_VERSION}-Linux/lib/${CMAKE_INSTALL_LIBDIR}
  ${CMAKE_BINARY_DIR})
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)

set(CPACK_COMPONENT_LIB_DESCRIPTION "wf: durable workflow runs on Redis - shared libraries
 libwf (start, inspect and stop runs) and libwf-worker (the worker pool and durable steps).")
set(CPACK_COMPONENT_DEV_DESCRIPTION "wf: durable workflow runs on Redis - development files
 Headers, the static libwf, pkg-config files and the CMake package (find_package(wf):
 wf::wf, wf::worker, wf_add_workflows()).")
set(CPACK_COMPONENT_WORKER_DESCRIPTION "wf: durable workflow runs on Redis - the worker
 wf-worker loads workflow modules and runs them against Redis; wf-worker@.service runs
 one pool per /etc/wf/NAME.env under systemd.")
set(CPACK_COMPONENT_TOOLS_DESCRIPTION "wf: durable workflow runs on Redis - the wf command
 Start, inspect, stop, retry and schedule runs from the shell; wf web serves a dashboard.")
set(CPACK_COMPONENT_DEV_DEPENDS lib)
set(CPACK_COMPONENT_WORKER_DEPENDS lib)
set(CPACK_COMPONENT_TOOLS_DEPENDS lib)

set(CPACK_DEBIAN_LIB_PACKAGE_NAME libwf0)
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libwf-dev)
set(CPACK_DEBIAN_WORKER_PACKAGE_NAME wf-worker)
set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME wf-tools)
set(CPACK_DEBIAN_LIB_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_WORKER_PACKAGE_SECTION net)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION net)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
  "libmsgpack-dev, libhiredis-dev, libevent-dev, libjansson-dev, libcurl4-openssl-dev | libcurl-dev, libssl-dev, pkg-config")
set(CPACK_DEBIAN_WORKER_PACKAGE_SUGGESTS "redis-server, wf-tools")
set(CPACK_DEBIAN_TOOLS_PACKAGE_SUGGESTS "redis-tools")
include(CPack)

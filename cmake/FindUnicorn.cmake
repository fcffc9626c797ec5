# FindUnicorn: Unicorn >= the requested version (emu needs 2.1: UC_TLB_VIRTUAL and the TLB hook).
# Looks first in the project-local prefix that third_party/install-unicorn.sh fills, then in
# the system (pkg-config's hints, then the default paths).
# Defines: Unicorn_FOUND, Unicorn_VERSION, Unicorn_INCLUDE_DIR, Unicorn_LIBRARY and the imported
# target Unicorn::unicorn. The library is linked by full path, so CMake's build RPATH names
# its directory and the executables run without LD_LIBRARY_PATH.

# The top project's prefix, then that of the repo this module lives in (the same for emu itself;
# they differ when another project borrows this module).
get_filename_component(_unicorn_own_prefix "${CMAKE_CURRENT_LIST_DIR}/../third_party/unicorn-prefix" ABSOLUTE)
set(_unicorn_prefixes "${CMAKE_SOURCE_DIR}/third_party/unicorn-prefix" "${_unicorn_own_prefix}")
list(REMOVE_DUPLICATES _unicorn_prefixes)

foreach(_p IN LISTS _unicorn_prefixes)  # a found result is cached; later calls then do nothing
  find_path(Unicorn_INCLUDE_DIR unicorn/unicorn.h PATHS "${_p}/include" NO_DEFAULT_PATH)
  find_library(Unicorn_LIBRARY NAMES unicorn PATHS "${_p}/lib" NO_DEFAULT_PATH)
endforeach()
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(PC_Unicorn QUIET unicorn)
endif()
find_path(Unicorn_INCLUDE_DIR unicorn/unicorn.h HINTS ${PC_Unicorn_INCLUDEDIR} ${PC_Unicorn_INCLUDE_DIRS})
find_library(Unicorn_LIBRARY NAMES unicorn HINTS ${PC_Unicorn_LIBDIR} ${PC_Unicorn_LIBRARY_DIRS})

# The version, from unicorn.h (UC_VERSION_MAJOR/MINOR/PATCH are defined as the UC_API_* ones).
unset(Unicorn_VERSION)
if(Unicorn_INCLUDE_DIR AND EXISTS "${Unicorn_INCLUDE_DIR}/unicorn/unicorn.h")
  file(STRINGS "${Unicorn_INCLUDE_DIR}/unicorn/unicorn.h" _unicorn_defs
       REGEX "^#define[ \t]+UC_API_(MAJOR|MINOR|PATCH)[ \t]+[0-9]+")
  foreach(_part MAJOR MINOR PATCH)
    set(_unicorn_${_part} "")
    if(_unicorn_defs MATCHES "UC_API_${_part}[ \t]+([0-9]+)")
      set(_unicorn_${_part} "${CMAKE_MATCH_1}")
    endif()
  endforeach()
  if(NOT _unicorn_MAJOR STREQUAL "" AND NOT _unicorn_MINOR STREQUAL "")
    set(Unicorn_VERSION "${_unicorn_MAJOR}.${_unicorn_MINOR}")
    if(NOT _unicorn_PATCH STREQUAL "")
      string(APPEND Unicorn_VERSION ".${_unicorn_PATCH}")
    endif()
  endif()
endif()

# A too-old Unicorn (bookworm's libunicorn-dev is 2.0.1) must not stay in the cache, or a later
# configure would not see the one install-unicorn.sh puts in the prefix: forget it, keeping
# the values for this run's message.
if(Unicorn_FIND_VERSION AND Unicorn_INCLUDE_DIR
   AND (NOT Unicorn_VERSION OR Unicorn_VERSION VERSION_LESS Unicorn_FIND_VERSION))
  set(_unicorn_inc "${Unicorn_INCLUDE_DIR}")
  set(_unicorn_lib "${Unicorn_LIBRARY}")
  unset(Unicorn_INCLUDE_DIR CACHE)
  unset(Unicorn_LIBRARY CACHE)
  set(Unicorn_INCLUDE_DIR "${_unicorn_inc}")
  set(Unicorn_LIBRARY "${_unicorn_lib}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Unicorn
  REQUIRED_VARS Unicorn_LIBRARY Unicorn_INCLUDE_DIR
  VERSION_VAR Unicorn_VERSION
  REASON_FAILURE_MESSAGE
    "run third_party/install-unicorn.sh: it puts Debian trixie's Unicorn 2.1 in third_party/unicorn-prefix/")

if(Unicorn_FOUND AND NOT TARGET Unicorn::unicorn)
  add_library(Unicorn::unicorn SHARED IMPORTED)
  set_target_properties(Unicorn::unicorn PROPERTIES
    IMPORTED_LOCATION "${Unicorn_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${Unicorn_INCLUDE_DIR}")
endif()
mark_as_advanced(Unicorn_INCLUDE_DIR Unicorn_LIBRARY)

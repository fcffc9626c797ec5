# Finds Unicorn >= the requested version: first the project-local prefix that
# third_party/install-unicorn.sh fills, then the system. Defines Unicorn::unicorn.
find_path(Unicorn_INCLUDE_DIR unicorn/unicorn.h
  PATHS ${PROJECT_SOURCE_DIR}/third_party/unicorn-prefix/include NO_DEFAULT_PATH)
find_path(Unicorn_INCLUDE_DIR unicorn/unicorn.h)
find_library(Unicorn_LIBRARY NAMES unicorn
  PATHS ${PROJECT_SOURCE_DIR}/third_party/unicorn-prefix/lib NO_DEFAULT_PATH)
find_library(Unicorn_LIBRARY NAMES unicorn)

if(Unicorn_INCLUDE_DIR AND EXISTS "${Unicorn_INCLUDE_DIR}/unicorn/unicorn.h")
  file(STRINGS "${Unicorn_INCLUDE_DIR}/unicorn/unicorn.h" _uc_defs REGEX "#define UC_API_(MAJOR|MINOR|PATCH) ")
  foreach(_part MAJOR MINOR PATCH)
    string(REGEX MATCH "UC_API_${_part} ([0-9]+)" _m "${_uc_defs}")
    set(_uc_${_part} "${CMAKE_MATCH_1}")
  endforeach()
  set(Unicorn_VERSION "${_uc_MAJOR}.${_uc_MINOR}.${_uc_PATCH}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Unicorn
  REQUIRED_VARS Unicorn_LIBRARY Unicorn_INCLUDE_DIR
  VERSION_VAR Unicorn_VERSION
  FAIL_MESSAGE "Unicorn >= 2.1 not found: run third_party/install-unicorn.sh (see README)")

if(Unicorn_FOUND AND NOT TARGET Unicorn::unicorn)
  add_library(Unicorn::unicorn SHARED IMPORTED)
  set_target_properties(Unicorn::unicorn PROPERTIES
    IMPORTED_LOCATION "${Unicorn_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${Unicorn_INCLUDE_DIR}")
endif()
mark_as_advanced(Unicorn_INCLUDE_DIR Unicorn_LIBRARY)

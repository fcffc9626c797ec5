// Clang thread-safety annotations (no-ops on other compilers).
// Every lock-guarded field carries EMU_GUARDED_BY, every function that needs a
// lock held says EMU_REQUIRES; the clang CI build turns violations into errors.
#pragma once

#if defined(__clang__)
#define EMU_TSA(x) __attribute__((x))
#else
#define EMU_TSA(x)
#endif

#define EMU_CAPABILITY(name) EMU_TSA(capability(name))
#define EMU_SCOPED_CAPABILITY EMU_TSA(scoped_lockable)
#define EMU_GUARDED_BY(x) EMU_TSA(guarded_by(x))
#define EMU_PT_GUARDED_BY(x) EMU_TSA(pt_guarded_by(x))
#define EMU_REQUIRES(...) EMU_TSA(requires_capability(__VA_ARGS__))
#define EMU_REQUIRES_SHARED(...) EMU_TSA(requires_shared_capability(__VA_ARGS__))
#define EMU_ACQUIRE(...) EMU_TSA(acquire_capability(__VA_ARGS__))
#define EMU_ACQUIRE_SHARED(...) EMU_TSA(acquire_shared_capability(__VA_ARGS__))
#define EMU_RELEASE(...) EMU_TSA(release_capability(__VA_ARGS__))
#define EMU_RELEASE_SHARED(...) EMU_TSA(release_shared_capability(__VA_ARGS__))
#define EMU_RELEASE_GENERIC(...) EMU_TSA(release_generic_capability(__VA_ARGS__))
#define EMU_TRY_ACQUIRE(...) EMU_TSA(try_acquire_capability(__VA_ARGS__))
#define EMU_TRY_ACQUIRE_SHARED(...) EMU_TSA(try_acquire_shared_capability(__VA_ARGS__))
#define EMU_EXCLUDES(...) EMU_TSA(locks_excluded(__VA_ARGS__))
#define EMU_ASSERT_CAPABILITY(x) EMU_TSA(assert_capability(x))
#define EMU_RETURN_CAPABILITY(x) EMU_TSA(lock_returned(x))
// Opt-out: every use carries a comment stating the invariant that makes it safe.
#define EMU_NO_THREAD_SAFETY_ANALYSIS EMU_TSA(no_thread_safety_analysis)

// What getrusage(2) and times(2) report of a guest process. Each guest thread runs on a host
// thread of its own (its vCPU), so the figures are the host kernel's for those threads: the
// live ones read when asked, the ended ones added up as they end (Linux keeps them in the
// signal struct the same way), and the children's added when they are reaped, as Linux's
// RUSAGE_CHILDREN and tms_cutime count them (a child not yet waited for counts nothing).
#pragma once

#include <cstdint>

#include "mmu/spin_lock.h"
#include "mmu/thread_annotations.h"

namespace emu {

struct ResourceUsage {
  int64_t user_us = 0, system_us = 0;
  int64_t max_rss_kb = 0;
  int64_t minor_faults = 0, major_faults = 0;
  int64_t in_blocks = 0, out_blocks = 0;
  int64_t voluntary_switches = 0, involuntary_switches = 0;
  // Threads and children add up; the peak resident size is the larger one's.
  void add(const ResourceUsage& other);
};

// The calling host thread's (RUSAGE_THREAD on the host).
ResourceUsage calling_thread_usage();
// Another thread of this host process, by tid, from /proc/self/task/TID/stat (times in clock
// ticks there); nothing for a thread that has gone.
ResourceUsage host_thread_usage(int tid);

class ProcessUsage {
 public:
  // A guest thread of the process ends: what it used stays with the process.
  void thread_ended(const ResourceUsage& u) EMU_EXCLUDES(lock_);
  // A child was reaped: its lifetime() joins the children's total.
  void child_reaped(const ResourceUsage& u) EMU_EXCLUDES(lock_);
  // The peak resident size seen so far, in KiB.
  void note_rss_kb(int64_t kb) EMU_EXCLUDES(lock_);

  ResourceUsage ended_threads() const EMU_EXCLUDES(lock_);
  ResourceUsage children() const EMU_EXCLUDES(lock_);
  int64_t max_rss_kb() const EMU_EXCLUDES(lock_);
  // What the parent adds when it reaps this process: its threads (all ended by then) and
  // its own reaped children.
  ResourceUsage lifetime() const EMU_EXCLUDES(lock_);

 private:
  mutable mmu::Mutex lock_;
  ResourceUsage ended_ EMU_GUARDED_BY(lock_);
  ResourceUsage children_ EMU_GUARDED_BY(lock_);
  int64_t max_rss_kb_ EMU_GUARDED_BY(lock_) = 0;
};

}  // namespace emu

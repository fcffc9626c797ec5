// What prctl(2) sets on a process and its threads, kept by emu (the host's settings are emu's
// own and shared by every guest process, so they cannot stand for one guest): the parent-death
// signal, no_new_privs, dumpable, the child-subreaper flag, the timer slack, THP-disable and
// keep-caps, and each thread's name (PR_SET_NAME, /proc/PID/task/TID/comm).
//
// Linux's rules for fork and execve, kept here: a child starts with no parent-death signal,
// is no subreaper, and carries the rest (its one thread takes its forking thread's name);
// execve makes the process dumpable again, clears keep-caps, and the thread's name becomes
// the new program's file name; the rest stays. The parent-death signal fires when the parent
// process ends (Linux: when the thread that forked ends). A new thread takes its
// creator's name.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace emu {

class ProcessControls {
 public:
  // The first process starts with emu's own timer slack, as a program started in its place.
  ProcessControls();

  std::atomic<int> pdeath_signal{0};
  std::atomic<bool> no_new_privs{false};  // one way: never cleared once set
  std::atomic<int> dumpable{1};           // SUID_DUMP_USER
  std::atomic<bool> child_subreaper{false};
  std::atomic<uint64_t> timer_slack_ns{0};
  // What PR_SET_TIMERSLACK 0 restores: the slack the parent had at fork.
  std::atomic<uint64_t> default_timer_slack_ns{0};
  std::atomic<bool> thp_disable{false};
  std::atomic<bool> keep_caps{false};

  // A fork child's controls: from `parent`, with `tid`'s name as its only thread's.
  void inherit(const ProcessControls& parent, int parent_tid, int child_tid);
  // execve: the thread names go (the survivor's becomes the new program's file name).
  void exec();

  // A thread's name (at most 15 bytes); `fallback` (the program's) until it sets its own.
  std::string thread_name(int tid, const std::string& fallback) const;
  void set_thread_name(int tid, std::string name);
  void copy_thread_name(int from_tid, int to_tid);
  // A thread ended (the leader's name stays: /proc/PID/comm still shows it).
  void forget_thread(int tid, int pid);

 private:
  mutable std::mutex names_lock_;
  std::map<int, std::string> names_;  // guarded by names_lock_
};

}  // namespace emu

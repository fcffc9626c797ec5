#include "emu/process/process_controls.h"

#include <sys/prctl.h>

namespace emu {

namespace {
constexpr size_t kCommBytes = 15;  // TASK_COMM_LEN less the terminating zero
}

ProcessControls::ProcessControls() {
  const int slack = ::prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
  timer_slack_ns.store(slack > 0 ? static_cast<uint64_t>(slack) : 50000);  // 50 us: Linux's default
  default_timer_slack_ns.store(timer_slack_ns.load());
}

void ProcessControls::inherit(const ProcessControls& parent, int parent_tid, int child_tid) {
  no_new_privs.store(parent.no_new_privs.load());
  dumpable.store(parent.dumpable.load());
  timer_slack_ns.store(parent.timer_slack_ns.load());
  default_timer_slack_ns.store(parent.timer_slack_ns.load());  // copy_process takes the current one
  thp_disable.store(parent.thp_disable.load());
  keep_caps.store(parent.keep_caps.load());
  std::lock_guard from(parent.names_lock_);
  const auto it = parent.names_.find(parent_tid);
  if (it == parent.names_.end()) return;
  std::lock_guard to(names_lock_);
  names_[child_tid] = it->second;
}

void ProcessControls::exec() {
  dumpable.store(1);  // begin_new_exec: SUID_DUMP_USER again
  keep_caps.store(false);
  std::lock_guard g(names_lock_);
  names_.clear();
}

std::string ProcessControls::thread_name(int tid, const std::string& fallback) const {
  std::lock_guard g(names_lock_);
  const auto it = names_.find(tid);
  return it != names_.end() ? it->second : fallback.substr(0, kCommBytes);
}

void ProcessControls::set_thread_name(int tid, std::string name) {
  if (name.size() > kCommBytes) name.resize(kCommBytes);
  std::lock_guard g(names_lock_);
  names_[tid] = std::move(name);
}

void ProcessControls::copy_thread_name(int from_tid, int to_tid) {
  std::lock_guard g(names_lock_);
  const auto it = names_.find(from_tid);
  if (it != names_.end()) names_[to_tid] = it->second;
}

void ProcessControls::forget_thread(int tid, int pid) {
  if (tid == pid) return;
  std::lock_guard g(names_lock_);
  names_.erase(tid);
}

}  // namespace emu

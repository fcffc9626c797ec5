// Fault-path tracing: what the fault handler, the syscall layer, the reclaimer, shootdowns and
// exclusive atomic blocks did, event by event (DESIGN.md "Tracing").
//
// Events go to named spdlog loggers, one per subsystem (text, one event per line), and/or to a
// Chrome trace-event JSON file with one track per vCPU and one for the reclaimer (open it in
// Perfetto to look at a contention episode). Filters: a guest address range (fault and lock
// events) and a set of vCPUs.
//
// Cost when off: the emulator holds a null Tracer pointer unless --trace was given, and every
// call site tests that pointer (and the event's bit) before doing anything; a build with
// -DEMU_TRACING=OFF removes even that test (kTracingCompiledIn), so the two can be compared.
#pragma once

#include <nlohmann/json.hpp>
#include <spdlog/logger.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace emu {

#ifndef EMU_TRACING
#define EMU_TRACING 1
#endif
inline constexpr bool kTracingCompiledIn = EMU_TRACING != 0;

enum class TraceEvent : uint8_t { Faults, Syscalls, Reclaim, Locks, Shootdown, Atomics, kCount };
std::string_view to_string(TraceEvent e);

struct TraceConfig {
  uint32_t events = 0;      // bit per TraceEvent
  std::string text_path;    // empty: text to stderr, unless only JSON was asked for
  std::string json_path;    // empty: no JSON
  uint64_t addr_lo = 0;     // fault and lock events only for [addr_lo, addr_hi]
  uint64_t addr_hi = ~uint64_t{0};
  std::set<uint32_t> vcpus; // empty: every vCPU
  // "faults,locks" or "all" into event bits; false and a reason for an unknown name.
  static bool parse_events(const std::string& list, uint32_t* bits, std::string* error);
  // "0x400000-0x500000" (hex or decimal); false for a malformed range.
  static bool parse_range(const std::string& text, uint64_t* lo, uint64_t* hi);
};

class Tracer {
 public:
  // `tracks`: vCPU slots; the reclaimer's track is the slot after them.
  static std::unique_ptr<Tracer> create(const TraceConfig& config, uint32_t vcpu_tracks, std::string* error);
  ~Tracer();

  bool on(TraceEvent e) const { return config_.events & (1u << static_cast<unsigned>(e)); }
  bool wants_vcpu(uint32_t track) const { return config_.vcpus.empty() || config_.vcpus.count(track); }
  bool wants_address(uint64_t a) const { return a >= config_.addr_lo && a <= config_.addr_hi; }
  uint32_t reclaimer_track() const { return vcpu_tracks_; }

  // One event: `track` is a vCPU slot or reclaimer_track(); times in ns of steady_clock.
  // `text` is the text line's body, `args` the JSON event's arguments.
  void record(TraceEvent e, uint32_t track, uint64_t start_ns, uint64_t duration_ns, const std::string& name,
              const std::string& text, nlohmann::json args);
  // Names a track (thread_name metadata), e.g. "vCPU 1 (tid 1234)".
  void name_track(uint32_t track, const std::string& name);
  // Writes the JSON file. Once: events recorded after it only reach the text log.
  bool finish(std::string* error);
  uint64_t events_recorded() const { return recorded_.load(std::memory_order_relaxed); }
  uint64_t events_dropped() const { return dropped_.load(std::memory_order_relaxed); }

  static uint64_t now_ns();

 private:
  Tracer(const TraceConfig& config, uint32_t vcpu_tracks);
  // Events kept for the JSON file, per track so vCPUs never share a lock.
  struct alignas(64) Track {
    std::mutex lock;
    std::vector<nlohmann::json> events;
    std::string name;
  };
  // A fault event takes about 2 KB as JSON in memory: at most ~0.5 GB per busy vCPU.
  static constexpr size_t kMaxEventsPerTrack = size_t{1} << 18;

  const TraceConfig config_;
  const uint32_t vcpu_tracks_;
  std::array<std::shared_ptr<spdlog::logger>, static_cast<size_t>(TraceEvent::kCount)> loggers_;
  std::unique_ptr<Track[]> tracks_;
  uint64_t epoch_ns_;
  std::atomic<uint64_t> recorded_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<bool> finished_{false};
};

}  // namespace emu

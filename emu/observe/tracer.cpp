#include "emu/observe/tracer.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <charconv>
#include <chrono>
#include <fstream>

namespace emu {

namespace {
constexpr std::array<std::string_view, static_cast<size_t>(TraceEvent::kCount)> kNames = {
    "faults", "syscalls", "reclaim", "locks", "shootdown", "atomics"};
// Logger names: one per subsystem, as the text lines show them.
constexpr std::array<const char*, static_cast<size_t>(TraceEvent::kCount)> kLoggers = {
    "fault", "syscall", "reclaim", "lock", "shootdown", "atomic"};

bool parse_number(std::string_view s, uint64_t* out) {
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s.remove_prefix(2);
    base = 16;
  }
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out, base);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}
}  // namespace

std::string_view to_string(TraceEvent e) { return kNames[static_cast<size_t>(e)]; }

bool TraceConfig::parse_events(const std::string& list, uint32_t* bits, std::string* error) {
  *bits = 0;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = list.find(',', start);
    const std::string name = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    bool found = name == "all";
    if (found) *bits |= (1u << static_cast<unsigned>(TraceEvent::kCount)) - 1;
    for (size_t i = 0; i < kNames.size() && !found; ++i) {
      if (name == kNames[i]) {
        *bits |= 1u << i;
        found = true;
      }
    }
    if (!found) {
      *error = "--trace " + list + ": unknown event '" + name +
               "' (faults, syscalls, reclaim, locks, shootdown, atomics, or all)";
      return false;
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return true;
}

bool TraceConfig::parse_range(const std::string& text, uint64_t* lo, uint64_t* hi) {
  const size_t dash = text.find('-');
  if (dash == std::string::npos) return false;
  return parse_number(std::string_view(text).substr(0, dash), lo) &&
         parse_number(std::string_view(text).substr(dash + 1), hi) && *lo <= *hi;
}

uint64_t Tracer::now_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

std::unique_ptr<Tracer> Tracer::create(const TraceConfig& config, uint32_t vcpu_tracks, std::string* error) {
  std::unique_ptr<Tracer> t(new Tracer(config, vcpu_tracks));
  spdlog::sink_ptr sink;
  try {
    if (!config.text_path.empty()) {
      sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(config.text_path, /*truncate=*/true);
    } else if (config.json_path.empty()) {
      sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    }
  } catch (const spdlog::spdlog_ex& e) {
    *error = "--trace-file " + config.text_path + ": " + e.what();
    return nullptr;
  }
  if (!config.json_path.empty()) {
    std::ofstream probe(config.json_path);  // fail now, not after the whole run
    if (!probe) {
      *error = "--trace-json " + config.json_path + ": cannot write there";
      return nullptr;
    }
  }
  if (sink) {
    for (size_t i = 0; i < t->loggers_.size(); ++i) {
      t->loggers_[i] = std::make_shared<spdlog::logger>(kLoggers[i], sink);
      t->loggers_[i]->set_pattern("%H:%M:%S.%f %-9n %v");
      t->loggers_[i]->set_level(spdlog::level::info);
    }
  }
  return t;
}

Tracer::Tracer(const TraceConfig& config, uint32_t vcpu_tracks)
    : config_(config), vcpu_tracks_(vcpu_tracks), tracks_(new Track[vcpu_tracks + 1]), epoch_ns_(now_ns()) {
  tracks_[vcpu_tracks].name = "reclaimer";
}

Tracer::~Tracer() {
  for (auto& l : loggers_)
    if (l) l->flush();
}

void Tracer::name_track(uint32_t track, const std::string& name) {
  std::lock_guard g(tracks_[track].lock);
  tracks_[track].name = name;
}

void Tracer::record(TraceEvent e, uint32_t track, uint64_t start_ns, uint64_t duration_ns, const std::string& name,
                    const std::string& text, nlohmann::json args) {
  recorded_.fetch_add(1, std::memory_order_relaxed);
  if (const auto& logger = loggers_[static_cast<size_t>(e)]) {
    if (track == vcpu_tracks_)
      logger->info("reclaimer {} {}", name, text);
    else
      logger->info("vcpu {} {} {}", track, name, text);
  }
  if (config_.json_path.empty() || finished_.load(std::memory_order_acquire)) return;
  Track& t = tracks_[track];
  std::lock_guard g(t.lock);
  // Checked again under the track's lock: finish() takes each lock after setting the flag,
  // so an event either makes it into the file or is counted as dropped.
  if (t.events.size() >= kMaxEventsPerTrack || finished_.load(std::memory_order_acquire)) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // Chrome trace-event "complete" events: microseconds since the trace began.
  t.events.push_back({{"name", name},
                      {"cat", std::string(to_string(e))},
                      {"ph", "X"},
                      {"pid", 1},
                      {"tid", track},
                      {"ts", double(start_ns - epoch_ns_) / 1000.0},
                      {"dur", double(duration_ns) / 1000.0},
                      {"args", std::move(args)}});
}

bool Tracer::finish(std::string* error) {
  for (auto& l : loggers_)
    if (l) l->flush();
  if (config_.json_path.empty() || finished_.exchange(true, std::memory_order_acq_rel)) return true;
  nlohmann::json out;
  out["displayTimeUnit"] = "ns";
  auto& events = out["traceEvents"] = nlohmann::json::array();
  events.push_back({{"name", "process_name"}, {"ph", "M"}, {"pid", 1}, {"args", {{"name", "emu"}}}});
  for (uint32_t i = 0; i <= vcpu_tracks_; ++i) {
    std::lock_guard g(tracks_[i].lock);
    if (tracks_[i].events.empty() && i != vcpu_tracks_) continue;
    const std::string name = tracks_[i].name.empty() ? "vCPU " + std::to_string(i) : tracks_[i].name;
    events.push_back({{"name", "thread_name"}, {"ph", "M"}, {"pid", 1}, {"tid", i}, {"args", {{"name", name}}}});
    // Sort index keeps vCPUs in order and the reclaimer last.
    events.push_back({{"name", "thread_sort_index"}, {"ph", "M"}, {"pid", 1}, {"tid", i}, {"args", {{"sort_index", i}}}});
    for (auto& e : tracks_[i].events) events.push_back(std::move(e));
    tracks_[i].events.clear();
  }
  out["otherData"] = {{"events_recorded", events_recorded()}, {"events_dropped", events_dropped()}};
  std::ofstream f(config_.json_path);
  f << out.dump() << "\n";
  if (!f) {
    *error = "cannot write " + config_.json_path;
    return false;
  }
  if (const uint64_t dropped = events_dropped()) {
    *error = "--trace-json kept at most " + std::to_string(kMaxEventsPerTrack) + " events per track: " +
             std::to_string(dropped) + " dropped (narrow it with --trace-addr or --trace-vcpu)";
    return false;
  }
  return true;
}

}  // namespace emu

#include "mmu/types.h"

#include <cerrno>

namespace mmu {

namespace {
template <class E, size_t N>
std::optional<E> parse_from(const std::string_view (&names)[N], std::string_view s) {
  for (size_t i = 0; i < N; ++i)
    if (names[i] == s) return static_cast<E>(i);
  return std::nullopt;
}
constexpr std::string_view kPagingNames[] = {"i386", "pae", "x86_64", "la57"};
constexpr std::string_view kSchemeNames[] = {"global", "split", "atomic", "ptebit"};
constexpr std::string_view kRssNames[] = {"shared", "per-vcpu"};
}  // namespace

std::string_view to_string(PagingMode m) { return kPagingNames[static_cast<int>(m)]; }
std::string_view to_string(SchemeKind s) { return kSchemeNames[static_cast<int>(s)]; }
std::string_view to_string(RssMode m) { return kRssNames[static_cast<int>(m)]; }
std::optional<PagingMode> parse_paging_mode(std::string_view s) {
  return parse_from<PagingMode>(kPagingNames, s);
}
std::optional<SchemeKind> parse_scheme(std::string_view s) {
  return parse_from<SchemeKind>(kSchemeNames, s);
}
std::optional<RssMode> parse_rss_mode(std::string_view s) { return parse_from<RssMode>(kRssNames, s); }

std::string_view to_string(Access a) {
  switch (a) {
    case Access::Read: return "read";
    case Access::Write: return "write";
    case Access::Fetch: return "fetch";
  }
  return "?";
}

std::string_view to_string(FaultOutcome o) {
  switch (o) {
    case FaultOutcome::Ok: return "ok";
    case FaultOutcome::SegvMapError: return "segv-maperr";
    case FaultOutcome::SegvAccessError: return "segv-accerr";
    case FaultOutcome::OutOfMemory: return "out-of-memory";
    case FaultOutcome::SigBus: return "sigbus";
  }
  return "?";
}

int to_errno(MmError e) {
  switch (e) {
    case MmError::None: return 0;
    case MmError::InvalidArgument: return EINVAL;
    case MmError::NoMemory: return ENOMEM;
    case MmError::AccessDenied: return EACCES;
    case MmError::AlreadyMapped: return EEXIST;
  }
  return EINVAL;
}

std::string_view to_string(MmError e) {
  switch (e) {
    case MmError::None: return "ok";
    case MmError::InvalidArgument: return "invalid argument";
    case MmError::NoMemory: return "out of memory or address space";
    case MmError::AccessDenied: return "access denied";
    case MmError::AlreadyMapped: return "range already mapped";
  }
  return "?";
}

}  // namespace mmu

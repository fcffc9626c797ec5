// Which of the two guest architectures a program is, and what follows from it.
#pragma once

#include <cstdint>
#include <string_view>

namespace emu {

enum class GuestArch : uint8_t { I386, X86_64 };

constexpr std::string_view to_string(GuestArch a) { return a == GuestArch::I386 ? "i386" : "x86_64"; }
// What uname(2) and AT_PLATFORM report.
constexpr std::string_view machine_name(GuestArch a) { return a == GuestArch::I386 ? "i686" : "x86_64"; }
constexpr unsigned pointer_size(GuestArch a) { return a == GuestArch::I386 ? 4 : 8; }

}  // namespace emu

// symbols.cpp: addr2line over the running executable (see symbols.h).
#include "cuda_emu/counting/symbols.h"

#include <dlfcn.h>

#include <cstdio>
#include <map>
#include <mutex>

namespace cuda_emu::counting {

namespace {

std::mutex g_mutex;
std::map<const void*, std::string> g_functions, g_lines;

// Offsets of `code` in its object file, and the file.
bool locate(const void* code, std::string& file, char* offset, std::size_t offset_size) {
  Dl_info info{};
  if (dladdr(code, &info) == 0 || info.dli_fname == nullptr) return false;
  file = info.dli_fname[0] != '\0' ? info.dli_fname : "/proc/self/exe";
  std::snprintf(offset, offset_size, "0x%zx",
                static_cast<std::size_t>(static_cast<const char*>(code) - static_cast<const char*>(info.dli_fbase)));
  return true;
}

// Runs addr2line with `flags` on the addresses (all in `file`); one output line per address
// (two with -f: function, then file:line).
std::vector<std::string> addr2line(const std::string& file, const std::vector<std::string>& offsets, bool functions) {
  std::string cmd = "addr2line -C " + std::string(functions ? "-f " : "") + "-e '" + file + "'";
  for (const auto& o : offsets) cmd += " " + o;
  cmd += " 2>/dev/null";
  std::vector<std::string> out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char line[4096];
  while (std::fgets(line, sizeof line, p)) {
    std::string s(line);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    out.push_back(s);
  }
  pclose(p);
  return out;
}

std::string without_parameters(std::string name) {
  if (name.rfind("void ", 0) == 0) name = name.substr(5);  // templates demangle with their return type
  // Cut the parameter list: the last '(' at template depth 0 that is not "(anonymous".
  int depth = 0;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (c == '<') ++depth;
    if (c == '>') --depth;
    if (c == '(' && depth == 0 && name.compare(i, 11, "(anonymous ") != 0) return name.substr(0, i);
  }
  return name;
}

std::string short_path(std::string s) {
  for (const char* root : {"/kernels/", "/tensor/", "/tests/", "/cuda_emu/"}) {
    const auto at = s.find(root);
    if (at != std::string::npos) return s.substr(at + 1);
  }
  return s;
}

}  // namespace

std::string function_name(const void* code) {
  std::lock_guard lock(g_mutex);
  if (auto it = g_functions.find(code); it != g_functions.end()) return it->second;
  std::string file;
  char offset[32];
  std::string name;
  if (locate(code, file, offset, sizeof offset)) {
    const auto out = addr2line(file, {offset}, true);
    if (!out.empty() && out[0] != "??") name = without_parameters(out[0]);
    if (name.empty()) name = offset;
  } else {
    name = "?";
  }
  g_functions[code] = name;
  return name;
}

std::vector<std::string> source_lines(const std::vector<const void*>& code) {
  std::lock_guard lock(g_mutex);
  std::vector<const void*> missing;
  std::vector<std::string> offsets;
  std::string file;
  for (const void* c : code) {
    if (g_lines.count(c)) continue;
    char offset[32];
    if (!locate(c, file, offset, sizeof offset)) {
      g_lines[c] = "?";
      continue;
    }
    missing.push_back(c);
    offsets.push_back(offset);
  }
  if (!missing.empty()) {
    // The return address is the instruction after the hook's call: still the access's line.
    const auto out = addr2line(file, offsets, false);
    for (std::size_t i = 0; i < missing.size(); ++i) {
      std::string s = i < out.size() ? out[i] : "?";
      if (const auto cut = s.find(" (discriminator"); cut != std::string::npos) s = s.substr(0, cut);
      g_lines[missing[i]] = s.rfind("??", 0) == 0 ? offsets[i] : short_path(s);
    }
  }
  std::vector<std::string> result;
  for (const void* c : code) result.push_back(g_lines[c]);
  return result;
}

}  // namespace cuda_emu::counting

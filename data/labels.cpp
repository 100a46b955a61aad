// Finding-name lookup: the 14 NIH classes, and the union with its aliases.
#include "data/labels.h"

#include <cctype>
#include <string>

namespace cxr::data {

int label_index(std::string_view name) {
  for (int k = 0; k < kNumClasses; ++k)
    if (kClassNames[k] == name) return k;
  if (name == "Infiltrate") return 3;  // BBox_List_2017.csv spelling
  return -1;
}

namespace {

// Lower case, '_' as ' ', surrounding blanks dropped.
std::string canonical(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  std::string out;
  for (char c : s) out += c == '_' ? ' ' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

struct Alias {
  std::string_view name;
  int index;
};
constexpr Alias kAliases[] = {
    {"pleural effusion", finding::kEffusion},   {"infiltrate", finding::kInfiltration},
    {"infiltrates", finding::kInfiltration},    {"pulmonary fibrosis", finding::kFibrosis},
    {"pulmonary edema", finding::kEdema},       {"hiatal hernia", finding::kHernia},
};

}  // namespace

int finding_index(std::string_view name) {
  const std::string c = canonical(name);
  for (int g = 0; g < kNumFindings; ++g)
    if (canonical(kFindingNames[static_cast<std::size_t>(g)]) == c) return g;
  for (const Alias& a : kAliases)
    if (a.name == c) return a.index;
  return -1;
}

}  // namespace cxr::data

// launch_report.cpp: one launch's counters, merged from its workers, and its JSON line.
//
// Launches run one after the other (pool.cpp holds a lock), so one "current launch" suffices.
// With CXR_EMU_COUNTERS=<file>, launch_end appends one JSON object per line to <file>: the
// fields of cuda_emu::launch_counters, and the access sites that cost the most beyond their
// ideal, each with its source line. With CXR_EMU_RESOURCES=<file> (a table written by
// scripts/kernel_resources from ptxas' sm_90 output), registers, static shared memory and the
// H100 occupancy they allow are added.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "cuda_emu/counting/hooks.h"
#include "cuda_emu/counting/symbols.h"
#include "cuda_emu/counting/worker_state.h"
#include "cuda_emu/cuda_emu.h"

namespace cuda_emu::counting {

namespace {

std::mutex g_mutex;
launch_counters g_current, g_last;
const void* g_kernel = nullptr;
std::map<std::pair<std::uintptr_t, int>, site_totals> g_sites;  // (pc, kind) -> totals
std::string g_label;
double g_floor_bytes = 0;

struct kernel_resources {
  int registers = -1, static_smem = -1;
};

const std::unordered_map<std::string, kernel_resources>& resource_table() {
  static const auto table = [] {
    std::unordered_map<std::string, kernel_resources> t;
    const char* path = std::getenv("CXR_EMU_RESOURCES");
    if (path == nullptr || *path == '\0') return t;
    std::ifstream in(path);
    if (!in) std::fprintf(stderr, "cuda-emu: cannot read CXR_EMU_RESOURCES=%s\n", path);
    std::string line;
    while (std::getline(in, line)) {  // name \t registers \t static shared bytes
      if (line.empty() || line[0] == '#') continue;
      std::istringstream fields(line);
      std::string name, regs, smem;
      if (std::getline(fields, name, '\t') && std::getline(fields, regs, '\t') && std::getline(fields, smem, '\t'))
        t[name] = kernel_resources{std::atoi(regs.c_str()), std::atoi(smem.c_str())};
    }
    return t;
  }();
  return table;
}

std::FILE* output() {
  static std::FILE* f = [] {
    const char* path = std::getenv("CXR_EMU_COUNTERS");
    if (path == nullptr || *path == '\0') return static_cast<std::FILE*>(nullptr);
    std::FILE* file = std::fopen(path, "a");
    if (file == nullptr) std::fprintf(stderr, "cuda-emu: cannot append to CXR_EMU_COUNTERS=%s\n", path);
    return file;
  }();
  return f;
}

const char* kind_name(int k) {
  static const char* names[] = {"global_load", "global_store", "shared_load", "shared_store"};
  return names[k];
}

nlohmann::ordered_json access_json(const access_counters& c, const char* unit) {
  return {{"requests", c.requests}, {unit, c.units}, {std::string("ideal_") + unit, c.ideal_units}, {"bytes", c.bytes}};
}

void write_json(const launch_counters& c) {
  std::FILE* f = output();
  if (f == nullptr) return;
  nlohmann::ordered_json j;
  j["kernel"] = c.kernel;
  j["op"] = c.op;
  j["op_floor_bytes"] = c.op_floor_bytes;
  j["grid"] = {c.grid[0], c.grid[1], c.grid[2]};
  j["block"] = {c.block[0], c.block[1], c.block[2]};
  j["dynamic_smem_bytes"] = c.dynamic_smem_bytes;
  j["global_load"] = access_json(c.global_load, "sectors");
  j["global_store"] = access_json(c.global_store, "sectors");
  j["shared_load"] = access_json(c.shared_load, "wavefronts");
  j["shared_store"] = access_json(c.shared_store, "wavefronts");
  j["barriers"] = c.barriers;
  j["global_atomics"] = c.global_atomics;
  j["shared_atomics"] = c.shared_atomics;
  j["mma"] = c.mma;
  j["registers"] = c.registers;
  j["static_smem_bytes"] = c.static_smem_bytes;
  j["h100_occupancy"] = c.h100_occupancy;
  // The sites that cost the most beyond their ideal (then the busiest), at most eight.
  std::vector<const site_totals*> sites;
  for (const auto& [key, s] : g_sites) sites.push_back(&s);
  std::sort(sites.begin(), sites.end(), [](const site_totals* a, const site_totals* b) {
    const auto ea = a->counters.units - a->counters.ideal_units, eb = b->counters.units - b->counters.ideal_units;
    return ea != eb ? ea > eb : a->counters.units > b->counters.units;
  });
  if (sites.size() > 8) sites.resize(8);
  std::vector<const void*> pcs;
  for (const auto* s : sites) pcs.push_back(reinterpret_cast<const void*>(s->pc));
  const auto lines = source_lines(pcs);
  j["sites"] = nlohmann::ordered_json::array();
  for (std::size_t i = 0; i < sites.size(); ++i) {
    const bool global = sites[i]->kind == global_load || sites[i]->kind == global_store;
    nlohmann::ordered_json s = access_json(sites[i]->counters, global ? "sectors" : "wavefronts");
    s["where"] = lines[i];
    s["kind"] = kind_name(sites[i]->kind);
    j["sites"].push_back(s);
  }
  const std::string text = j.dump() + "\n";
  std::fwrite(text.data(), 1, text.size(), f);
  std::fflush(f);
}

}  // namespace

void launch_begin(const void* kernel, dim3 grid, dim3 block, std::size_t smem_bytes) {
  std::lock_guard lock(g_mutex);
  g_current = launch_counters{};
  g_kernel = kernel;
  g_sites.clear();
  g_current.op = g_label;
  g_current.op_floor_bytes = g_floor_bytes;
  g_current.grid[0] = grid.x, g_current.grid[1] = grid.y, g_current.grid[2] = grid.z;
  g_current.block[0] = block.x, g_current.block[1] = block.y, g_current.block[2] = block.z;
  g_current.dynamic_smem_bytes = smem_bytes;
}

void add_worker_share(const worker_state& w) {
  std::lock_guard lock(g_mutex);
  const warp_recorder& r = w.recorder;
  g_current.global_load.add(r.totals[global_load]);
  g_current.global_store.add(r.totals[global_store]);
  g_current.shared_load.add(r.totals[shared_load]);
  g_current.shared_store.add(r.totals[shared_store]);
  g_current.barriers += w.barriers;
  g_current.global_atomics += w.global_atomics;
  g_current.shared_atomics += w.shared_atomics;
  g_current.mma += w.mma;
  for (const site_totals& s : r.sites) {
    site_totals& into = g_sites[{s.pc, static_cast<int>(s.kind)}];
    into.pc = s.pc;
    into.kind = s.kind;
    into.counters.add(s.counters);
  }
}

void launch_end() {
  std::lock_guard lock(g_mutex);
  g_current.kernel = g_kernel ? function_name(g_kernel) : "?";
  const auto& table = resource_table();
  if (auto it = table.find(g_current.kernel); it != table.end()) {
    g_current.registers = it->second.registers;
    g_current.static_smem_bytes = it->second.static_smem;
    g_current.h100_occupancy =
        h100_occupancy(g_current.block[0] * g_current.block[1] * g_current.block[2], it->second.registers,
                       static_cast<std::uint64_t>(it->second.static_smem) + g_current.dynamic_smem_bytes);
  }
  g_last = g_current;
  write_json(g_current);
}

}  // namespace cuda_emu::counting

bool cuda_emu::counting_build() { return true; }

void cuda_emu::set_counters_label(const std::string& op, double floor_bytes) {
  std::lock_guard lock(counting::g_mutex);
  counting::g_label = op;
  counting::g_floor_bytes = floor_bytes;
}

cuda_emu::launch_counters cuda_emu::last_launch_counters() {
  std::lock_guard lock(counting::g_mutex);
  return counting::g_last;
}

// warp_recorder.cpp: warp request formation (design: warp_recorder.h).
#include "cuda_emu/counting/warp_recorder.h"

#include <algorithm>

namespace cuda_emu::counting {

namespace {
std::uint32_t absent_lanes(unsigned threads, unsigned warp) {
  const unsigned lanes = threads - warp * 32;
  return lanes >= 32 ? 0u : ~((1u << lanes) - 1u);
}
bool is_global(unsigned kind) { return kind == global_load || kind == global_store; }
}  // namespace

void warp_recorder::start(unsigned threads_per_block) {
  threads_ = threads_per_block;
  for (auto& t : totals) t = access_counters{};
  sites.clear();
  site_of_pc_.clear();
  for (auto& c : cache_) c = cached_site{};
  site_capacity_ = 0;
  occurrences_.clear();
  warps_.assign((threads_ + 31) / 32, warp{});
}

void warp_recorder::begin_block() {
  std::fill(occurrences_.begin(), occurrences_.end(), 0u);
  for (unsigned w = 0; w < warps_.size(); ++w) {
    warps_[w].exited = absent_lanes(threads_, w);
    for (auto& q : warps_[w].queues) q = site_queue{};
  }
}

unsigned warp_recorder::site_index(std::uintptr_t pc, access_kind kind) {
  // Global and shared accesses of one instruction (a generic pointer) are separate sites.
  const std::uintptr_t key = pc * 4 + (is_global(kind) ? 0 : 1);
  cached_site& c = cache_[(key >> 2) & 255];
  if (c.pc == key) return c.index;
  auto [it, added] = site_of_pc_.try_emplace(key, static_cast<unsigned>(sites.size()));
  if (added) {
    sites.push_back(site_totals{pc, kind, {}});
    if (sites.size() > site_capacity_) {  // widen the per-thread occurrence table
      const unsigned wider = std::max(16u, site_capacity_ * 2);
      std::vector<std::uint32_t> grown(std::size_t{threads_} * wider, 0u);
      for (unsigned t = 0; t < threads_; ++t)
        std::copy_n(occurrences_.begin() + std::size_t{t} * site_capacity_, site_capacity_,
                    grown.begin() + std::size_t{t} * wider);
      occurrences_.swap(grown);
      site_capacity_ = wider;
    }
    for (auto& w : warps_) w.queues.resize(sites.size());
  }
  c = cached_site{key, it->second};
  return it->second;
}

void warp_recorder::record(unsigned thread, std::uintptr_t pc, access_kind kind, std::uint64_t address,
                           std::uint32_t bytes) {
  const unsigned site = site_index(pc, kind);
  const std::uint64_t occurrence = occurrences_[std::size_t{thread} * site_capacity_ + site]++;
  warp& w = warps_[thread / 32];
  site_queue& q = w.queues[site];
  if (occurrence < q.base) return;  // cannot happen: requests below base were completed by every lane
  const std::size_t at = q.head + static_cast<std::size_t>(occurrence - q.base);
  if (at >= q.items.size()) q.items.resize(at + 1);
  request& r = q.items[at];
  const unsigned lane = thread % 32;
  r.lanes[lane] = lane_access{address, bytes};
  r.mask |= 1u << lane;
  if ((r.mask | w.exited) == ~0u) {
    finish(r, site);
    pop_done(q);
  }
}

void warp_recorder::pop_done(site_queue& q) {
  while (q.head < q.items.size() && q.items[q.head].done) {
    ++q.head;
    ++q.base;
  }
  if (q.head == q.items.size()) {
    q.items.clear();
    q.head = 0;
  } else if (q.head > 256 && q.head * 2 > q.items.size()) {
    q.items.erase(q.items.begin(), q.items.begin() + static_cast<std::ptrdiff_t>(q.head));
    q.head = 0;
  }
}

void warp_recorder::finish(request& r, unsigned site) {
  site_totals& s = sites[site];
  const request_cost c = is_global(s.kind) ? global_request_cost(r.lanes, r.mask) : shared_request_cost(r.lanes, r.mask);
  access_counters add;
  add.requests = 1;
  add.units = c.units;
  add.ideal_units = c.ideal_units;
  add.bytes = c.distinct_bytes;
  s.counters.add(add);
  totals[s.kind].add(add);
  r.done = true;
}

void warp_recorder::flush(warp& w) {
  for (unsigned site = 0; site < w.queues.size(); ++site) {
    site_queue& q = w.queues[site];
    for (std::size_t i = q.head; i < q.items.size(); ++i)
      if (!q.items[i].done && q.items[i].mask != 0) finish(q.items[i], site);
    q = site_queue{};
  }
}

void warp_recorder::thread_exited(unsigned thread) {
  warp& w = warps_[thread / 32];
  w.exited |= 1u << (thread % 32);
  if (w.exited == ~0u) flush(w);
}

}  // namespace cuda_emu::counting

// warp_recorder.h: forming warp requests from the accesses of single CUDA threads (internal).
//
// The emulator runs the threads of a block one after the other, so lane 0 may be far ahead
// of lane 31. Each access is filed under (site, occurrence): the site is the instruction (its
// return address in the instrumented code), the occurrence is how many times this thread has
// executed that site before. Lanes of one warp with the same (site, occurrence) form one
// request, as one instruction of a warp does on the GPU. A request is complete when every lane
// of the warp has contributed or exited; then its cost is computed (request_cost.h) and the
// accesses are forgotten. Requests that some lanes never reach (divergence) are completed when
// the last lane of the warp exits.
//
// One recorder per worker OS thread: a worker runs one block at a time.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "cuda_emu/counting/request_cost.h"
#include "cuda_emu/memory_counters.h"

namespace cuda_emu::counting {

enum access_kind : std::uint8_t { global_load, global_store, shared_load, shared_store, access_kinds };

// Totals of one access site of the kernel.
struct site_totals {
  std::uintptr_t pc = 0;
  access_kind kind = global_load;
  access_counters counters;
};

class warp_recorder {
 public:
  void start(unsigned threads_per_block);  // a launch's share on this worker
  void begin_block();
  void record(unsigned thread, std::uintptr_t pc, access_kind kind, std::uint64_t address, std::uint32_t bytes);
  void thread_exited(unsigned thread);

  access_counters totals[access_kinds];
  std::vector<site_totals> sites;  // by site index

 private:
  struct request {
    std::uint32_t mask = 0;  // lanes that contributed
    bool done = false;
    lane_access lanes[32];
  };
  struct site_queue {  // the pending requests of one site in one warp, by occurrence
    std::uint64_t base = 0;  // occurrence of items[head]
    std::size_t head = 0;
    std::vector<request> items;
  };
  struct warp {
    std::uint32_t exited = 0;  // exited lanes and lanes past the block
    std::vector<site_queue> queues;  // by site index
  };

  unsigned site_index(std::uintptr_t pc, access_kind kind);
  void finish(request& r, unsigned site);
  void flush(warp& w);
  void pop_done(site_queue& q);

  unsigned threads_ = 0;
  std::unordered_map<std::uintptr_t, unsigned> site_of_pc_;
  struct cached_site {
    std::uintptr_t pc = 0;
    unsigned index = 0;
  };
  cached_site cache_[256];
  unsigned site_capacity_ = 0;
  std::vector<std::uint32_t> occurrences_;  // [thread * site_capacity_ + site]
  std::vector<warp> warps_;
};

}  // namespace cuda_emu::counting

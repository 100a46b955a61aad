// All-reduce bandwidth of cxr's dist::Communicator (issue 16, point 7), as nccl-tests'
// all_reduce_perf reports it: f32 sum, in place, message sizes from --min-bytes to --max-bytes
// (x --factor each row).
//
//   mpirun --allow-run-as-root --oversubscribe -np 2 build/release/bench_allreduce
//   mpirun -np 2 build/release/bench_allreduce --min-bytes 4K --max-bytes 64M --json out.json
//
// A standalone program, not Google Benchmark: every rank must run the same collectives the same
// number of times, and Google Benchmark picks its iteration counts per process. Here each row
// runs --warmup untimed calls, a barrier, then `iters` timed calls back to back; `iters` is a
// function of the message size alone (--iters, or enough calls for about --bytes-per-row of
// traffic, between 5 and 200), so every rank agrees on it.
//
// Each call is what training does with a gradient bucket: all_reduce_sum_async (queued to the
// back end's communication thread) then wait(). Reported per row (rank 0 prints; the time is
// the slowest rank's mean per call):
//   time_us    wall time of one call on the caller's thread (queue + MPI + wake-up)
//   mpi_us     Work::seconds(): the back end's own time in MPI_Allreduce
//   algbw      bytes / time_us                      (GB/s, 1e9 bytes)
//   busbw      algbw * 2 (n - 1) / n                (nccl-tests' all-reduce bus bandwidth)
// --check verifies each size once (rank r contributes r + 1, the sum is n (n + 1) / 2 exactly).
// Without a launcher (one process) the communicator is the identity and busbw is 0.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "dist/world.h"
#include "tensor/tensor.h"

namespace {

using namespace cxr;

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::size_t parse_bytes(const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  std::string unit(end);
  double mult = 1;
  if (unit == "K" || unit == "k" || unit == "KB") mult = 1024;
  else if (unit == "M" || unit == "MB") mult = 1024.0 * 1024;
  else if (unit == "G" || unit == "GB") mult = 1024.0 * 1024 * 1024;
  else if (!unit.empty()) throw std::runtime_error("bad size '" + s + "' (N, NK, NM or NG)");
  return static_cast<std::size_t>(v * mult);
}

struct Options {
  std::size_t min_bytes = 4 * 1024;
  std::size_t max_bytes = 64u * 1024 * 1024;
  int factor = 2;
  int iters = 0;  // 0: from bytes_per_row
  int warmup = 5;
  double bytes_per_row = 1.0e9;
  bool check = false;
  std::string json;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--min-bytes" || a == "-b") o.min_bytes = parse_bytes(value());
    else if (a == "--max-bytes" || a == "-e") o.max_bytes = parse_bytes(value());
    else if (a == "--factor" || a == "-f") o.factor = std::stoi(value());
    else if (a == "--iters" || a == "-n") o.iters = std::stoi(value());
    else if (a == "--warmup" || a == "-w") o.warmup = std::stoi(value());
    else if (a == "--bytes-per-row") o.bytes_per_row = static_cast<double>(parse_bytes(value()));
    else if (a == "--check" || a == "-c") o.check = true;
    else if (a == "--json") o.json = value();
    else if (a == "-h" || a == "--help") {
      std::cout << "bench_allreduce [--min-bytes 4K] [--max-bytes 64M] [--factor 2] [--iters N] [--warmup 5]\n"
                   "                [--bytes-per-row 1G] [--check] [--json FILE]\n"
                   "run under mpirun -np N (see the comment at the top of bench/bench_allreduce.cpp)\n";
      std::exit(0);
    } else {
      throw std::runtime_error("unknown argument: " + a);
    }
  }
  if (o.min_bytes < 4 || o.max_bytes < o.min_bytes || o.factor < 2)
    throw std::runtime_error("need 4 <= --min-bytes <= --max-bytes and --factor >= 2");
  return o;
}

struct Row {
  std::size_t bytes = 0;
  std::int64_t count = 0;
  int iters = 0;
  double time_us = 0, mpi_us = 0, algbw = 0, busbw = 0;
  bool ok = true;
};

int run(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const dist::WorldInfo world = dist::world_from_environment();
  std::unique_ptr<dist::Communicator> comm = dist::make_communicator(world, {.backend = dist::Backend::MPI});
  const int n = comm->size();
  const bool root = comm->rank() == 0;
  const double bus_factor = n > 1 ? 2.0 * (n - 1) / n : 0.0;

  if (root) {
    std::printf("# all-reduce, f32 sum, in place: cxr dist::Communicator, %s back end, %d ranks (%s)\n",
                dist::backend_name(comm->backend()), n, world.launcher.empty() ? "no launcher" : world.launcher.c_str());
    std::printf("# time: mean per call, slowest rank; busbw = algbw * 2(n-1)/n (nccl-tests)\n");
    std::printf("#%11s %12s %6s %11s %11s %9s %9s %6s\n", "size (B)", "count", "iters", "time (us)", "mpi (us)",
                "algbw", "busbw", "check");
    std::printf("#%11s %12s %6s %11s %11s %9s %9s %6s\n", "", "(f32)", "", "", "", "(GB/s)", "(GB/s)", "");
  }
  std::vector<Row> rows;
  bool all_ok = true;
  for (std::size_t bytes = o.min_bytes; bytes <= o.max_bytes; bytes *= static_cast<std::size_t>(o.factor)) {
    Row r;
    r.count = static_cast<std::int64_t>(bytes / sizeof(float));
    r.bytes = static_cast<std::size_t>(r.count) * sizeof(float);
    r.iters = o.iters > 0 ? o.iters
                          : static_cast<int>(std::clamp(o.bytes_per_row / static_cast<double>(r.bytes), 5.0, 200.0));
    Tensor t = Tensor::zeros({r.count});
    if (o.check) {
      float* p = t.f32();
      std::fill(p, p + r.count, static_cast<float>(comm->rank() + 1));
      comm->all_reduce_sum(t);
      const float want = static_cast<float>(n * (n + 1) / 2);
      for (std::int64_t i = 0; i < r.count; ++i)
        if (p[i] != want) { r.ok = false; break; }
      std::fill(p, p + r.count, 0.f);  // timed calls on zeros: the values never grow
    }
    for (int i = 0; i < o.warmup; ++i) comm->all_reduce_sum(t);
    comm->barrier();
    double mpi_s = 0;
    const double t0 = steady_seconds();
    for (int i = 0; i < r.iters; ++i) {
      auto w = comm->all_reduce_sum_async(t);
      w->wait();
      mpi_s += w->seconds();
    }
    const double wall = steady_seconds() - t0;
    // The slowest rank's means, and whether every rank's check passed.
    const std::vector<double> mine{wall / r.iters, mpi_s / r.iters, r.ok ? 0.0 : 1.0};
    const std::vector<double> all = comm->all_gather(mine);
    double time_s = 0, mpi_mean = 0;
    for (int k = 0; k < n; ++k) {
      time_s = std::max(time_s, all[3 * k]);
      mpi_mean = std::max(mpi_mean, all[3 * k + 1]);
      if (all[3 * k + 2] != 0) r.ok = false;
    }
    all_ok = all_ok && r.ok;
    r.time_us = time_s * 1e6;
    r.mpi_us = mpi_mean * 1e6;
    r.algbw = static_cast<double>(r.bytes) / time_s / 1e9;
    r.busbw = r.algbw * bus_factor;
    if (root) {
      std::printf("%12zu %12lld %6d %11.1f %11.1f %9.3f %9.3f %6s\n", r.bytes, static_cast<long long>(r.count), r.iters,
                  r.time_us, r.mpi_us, r.algbw, r.busbw, o.check ? (r.ok ? "ok" : "FAIL") : "-");
      std::fflush(stdout);
    }
    rows.push_back(r);
    if (bytes > o.max_bytes / static_cast<std::size_t>(o.factor)) break;  // no overflow past max
  }
  if (root && !rows.empty()) {
    double sum = 0;
    for (const Row& r : rows) sum += r.busbw;
    std::printf("# avg bus bandwidth: %.3f GB/s over %zu sizes\n", sum / static_cast<double>(rows.size()), rows.size());
  }
  if (root && !o.json.empty()) {
    std::ofstream f(o.json);
    f << "{\"backend\":\"" << dist::backend_name(comm->backend()) << "\",\"ranks\":" << n << ",\"rows\":[";
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      char buf[256];
      std::snprintf(buf, sizeof buf,
                    "%s{\"bytes\":%zu,\"count\":%lld,\"iters\":%d,\"time_us\":%.3f,\"mpi_us\":%.3f,"
                    "\"algbw_GBps\":%.6f,\"busbw_GBps\":%.6f,\"ok\":%s}",
                    i ? "," : "", r.bytes, static_cast<long long>(r.count), r.iters, r.time_us, r.mpi_us, r.algbw,
                    r.busbw, r.ok ? "true" : "false");
      f << buf;
    }
    f << "]}\n";
  }
  comm->barrier();
  if (o.check && !all_ok) {
    if (root) std::fprintf(stderr, "bench_allreduce: the all-reduce gave a wrong sum (--check)\n");
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_allreduce: %s\n", e.what());
    cxr::dist::abort_job(1);
    return 1;
  }
}
